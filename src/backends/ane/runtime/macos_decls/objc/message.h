/* Declarations only, for the Linux syntax check of apple_ane.c. As in the SDK with
 * OBJC_OLD_DISPATCH_PROTOTYPES=0: callers must cast objc_msgSend to the method's signature. */
#pragma once
#include <objc/runtime.h>
void objc_msgSend(void);
