/* Declarations only, for the Linux syntax check of apple_ane.c. */
#pragma once
#include <stddef.h>
int snprintf(char* str, size_t size, const char* format, ...);
