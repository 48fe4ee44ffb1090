/* Declarations only, for the Linux syntax check of apple_ane.c. */
#pragma once
#define RTLD_NOW 0x2
#define RTLD_DEFAULT ((void*)-2)
void* dlopen(const char* path, int mode);
void* dlsym(void* handle, const char* symbol);
char* dlerror(void);
