/* Declarations only, for the Linux syntax check of apple_ane.c. */
#pragma once
#include <stddef.h>
void* memcpy(void* dst, const void* src, size_t n);
size_t strlen(const char* s);
