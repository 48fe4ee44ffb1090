/* Declarations only, for the Linux syntax check of apple_ane.c (see ../README.md). */
#pragma once
typedef struct objc_class* Class;
typedef struct objc_object* id;
typedef struct objc_selector* SEL;
typedef _Bool BOOL;
SEL sel_registerName(const char* name);
Class objc_getClass(const char* name);
BOOL class_respondsToSelector(Class cls, SEL sel);
Class object_getClass(id obj);
