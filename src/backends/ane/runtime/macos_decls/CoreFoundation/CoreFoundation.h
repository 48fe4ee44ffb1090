/* Declarations only, for the Linux syntax check of apple_ane.c. */
#pragma once
#include <stddef.h>
#include <stdint.h>
typedef const void* CFTypeRef;
typedef const struct __CFString* CFStringRef;
typedef const struct __CFAllocator* CFAllocatorRef;
typedef const struct __CFNumber* CFNumberRef;
typedef const struct __CFDictionary* CFDictionaryRef;
typedef struct __CFDictionary* CFMutableDictionaryRef;
typedef long CFIndex;
typedef CFIndex CFNumberType;
enum { kCFNumberLongType = 10 };
typedef struct { CFIndex version; const void* retain; const void* release; const void* copyDescription;
                 const void* equal; const void* hash; } CFDictionaryKeyCallBacks;
typedef struct { CFIndex version; const void* retain; const void* release; const void* copyDescription;
                 const void* equal; } CFDictionaryValueCallBacks;
extern const CFAllocatorRef kCFAllocatorDefault;
extern const CFDictionaryKeyCallBacks kCFTypeDictionaryKeyCallBacks;
extern const CFDictionaryValueCallBacks kCFTypeDictionaryValueCallBacks;
CFNumberRef CFNumberCreate(CFAllocatorRef allocator, CFNumberType theType, const void* valuePtr);
CFMutableDictionaryRef CFDictionaryCreateMutable(CFAllocatorRef allocator, CFIndex capacity,
                                                 const CFDictionaryKeyCallBacks* keyCallBacks,
                                                 const CFDictionaryValueCallBacks* valueCallBacks);
void CFDictionarySetValue(CFMutableDictionaryRef theDict, const void* key, const void* value);
void CFRelease(CFTypeRef cf);
