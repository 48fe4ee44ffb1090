/* The AppleNeuralEngine.framework calls, through the Objective-C runtime's C API (no Objective-C
 * syntax, so the file compiles as C and CI can syntax-check it for an Apple target on Linux).
 * Every message send casts objc_msgSend to the selector's exact C signature. */
#include "apple_ane.h"

#include <CoreFoundation/CoreFoundation.h>
#include <IOSurface/IOSurface.h>
#include <dlfcn.h>
#include <objc/message.h>
#include <objc/runtime.h>
#include <stdio.h>
#include <string.h>

/* Exported by libobjc, not declared in its public headers. */
extern void* objc_autoreleasePoolPush(void);
extern void objc_autoreleasePoolPop(void* pool);

static const char* kFramework = "/System/Library/PrivateFrameworks/AppleNeuralEngine.framework/AppleNeuralEngine";
static Class g_descriptor, g_model, g_request, g_surface_object;

static SEL sel(const char* name) { return sel_registerName(name); }

typedef id (*send0_fn)(id, SEL);
typedef id (*send1_fn)(id, SEL, id);
static id send0(id obj, const char* s) { return ((send0_fn)objc_msgSend)(obj, sel(s)); }
static id send1(id obj, const char* s, id arg) { return ((send1_fn)objc_msgSend)(obj, sel(s), arg); }

static void put_error(char* err, size_t errlen, const char* what, id nserror) {
  if (!err || errlen == 0) return;
  const char* text = "no NSError";
  long code = 0;
  if (nserror) {
    id desc = send0(nserror, "localizedDescription");
    text = desc ? ((const char* (*)(id, SEL))objc_msgSend)(desc, sel("UTF8String")) : "?";
    code = ((long (*)(id, SEL))objc_msgSend)(nserror, sel("code"));
  }
  snprintf(err, errlen, "%s: %s (code 0x%lx)", what, text, code);
}

static id ns_string(const char* s) {
  return ((id(*)(id, SEL, const char*))objc_msgSend)((id)objc_getClass("NSString"), sel("stringWithUTF8String:"), s);
}
static id ns_data(const void* p, size_t n) {
  return ((id(*)(id, SEL, const void*, unsigned long))objc_msgSend)((id)objc_getClass("NSData"),
                                                                    sel("dataWithBytes:length:"), p, n);
}
static id ns_int(long v) {
  return ((id(*)(id, SEL, long))objc_msgSend)((id)objc_getClass("NSNumber"), sel("numberWithLong:"), v);
}
static id ns_mutable_dict(void) { return send0((id)objc_getClass("NSMutableDictionary"), "dictionary"); }
static void ns_set(id dict, id key, id value) {
  ((void (*)(id, SEL, id, id))objc_msgSend)(dict, sel("setObject:forKey:"), value, key);
}
static id ns_array(const id* items, unsigned long n) {
  return ((id(*)(id, SEL, const id*, unsigned long))objc_msgSend)((id)objc_getClass("NSArray"),
                                                                  sel("arrayWithObjects:count:"), items, n);
}
static id retain(id obj) { return obj ? send0(obj, "retain") : obj; }

int ane_open(char* err, size_t errlen) {
  if (!dlopen(kFramework, RTLD_NOW)) {
    snprintf(err, errlen, "cannot load %s: %s", kFramework, dlerror());
    return 0;
  }
  g_descriptor = objc_getClass("_ANEInMemoryModelDescriptor");
  g_model = objc_getClass("_ANEInMemoryModel");
  g_request = objc_getClass("_ANERequest");
  g_surface_object = objc_getClass("_ANEIOSurfaceObject");
  if (!g_descriptor || !g_model || !g_request || !g_surface_object) {
    snprintf(err, errlen, "AppleNeuralEngine.framework lacks one of _ANEInMemoryModelDescriptor, _ANEInMemoryModel, "
                          "_ANERequest, _ANEIOSurfaceObject (a macOS that changed its private API?)");
    return 0;
  }
  return 1;
}

const char* ane_temp_dir(void) {
  static char dir[1024];
  void* pool = objc_autoreleasePoolPush();
  id tmp = ((id(*)(void))dlsym(RTLD_DEFAULT, "NSTemporaryDirectory"))();
  snprintf(dir, sizeof dir, "%s", tmp ? ((const char* (*)(id, SEL))objc_msgSend)(tmp, sel("UTF8String")) : "/tmp/");
  objc_autoreleasePoolPop(pool);
  return dir;
}

ane_obj ane_model_create(const char* mil, size_t mil_len, int n_weights, const char* const* keys,
                         const void* const* data, const size_t* sizes, char* err, size_t errlen) {
  void* pool = objc_autoreleasePoolPush();
  id weights = ns_mutable_dict();
  for (int i = 0; i < n_weights; ++i) {
    id entry = ns_mutable_dict();
    ns_set(entry, ns_string("offset"), ns_int(0));
    ns_set(entry, ns_string("data"), ns_data(data[i], sizes[i]));
    ns_set(weights, ns_string(keys[i]), entry);
  }
  id text = ns_data(mil, mil_len);
  id desc = ((id(*)(id, SEL, id, id, id))objc_msgSend)((id)g_descriptor, sel("modelWithMILText:weights:optionsPlist:"),
                                                       text, weights, (id)0);
  id model = desc ? send1((id)g_model, "inMemoryModelWithDescriptor:", desc) : (id)0;
  if (!desc) snprintf(err, errlen, "modelWithMILText:weights:optionsPlist: returned nil (the MIL text was refused)");
  else if (!model) snprintf(err, errlen, "inMemoryModelWithDescriptor: returned nil");
  model = retain(model);
  objc_autoreleasePoolPop(pool);
  return (ane_obj)model;
}

int ane_model_id(ane_obj model, char* out, size_t outlen) {
  void* pool = objc_autoreleasePoolPush();
  id hex = send0((id)model, "hexStringIdentifier");
  int ok = hex != (id)0;
  if (ok) snprintf(out, outlen, "%s", ((const char* (*)(id, SEL))objc_msgSend)(hex, sel("UTF8String")));
  objc_autoreleasePoolPop(pool);
  return ok;
}

typedef BOOL (*qos_op_fn)(id, SEL, unsigned int, id, id*);

static int qos_op(ane_obj model, const char* selector, unsigned qos, char* err, size_t errlen) {
  void* pool = objc_autoreleasePoolPush();
  id error = (id)0;
  BOOL ok = ((qos_op_fn)objc_msgSend)((id)model, sel(selector), qos, ns_mutable_dict(), &error);
  if (!ok) put_error(err, errlen, selector, error);
  objc_autoreleasePoolPop(pool);
  return ok ? 1 : 0;
}

int ane_model_compile(ane_obj model, unsigned qos, char* err, size_t errlen) {
  return qos_op(model, "compileWithQoS:options:error:", qos, err, errlen);
}
int ane_model_load(ane_obj model, unsigned qos, char* err, size_t errlen) {
  return qos_op(model, "loadWithQoS:options:error:", qos, err, errlen);
}

int ane_model_evaluate(ane_obj model, ane_obj request, unsigned qos, char* err, size_t errlen) {
  void* pool = objc_autoreleasePoolPush();
  id error = (id)0;
  BOOL ok = ((BOOL(*)(id, SEL, unsigned int, id, id, id*))objc_msgSend)(
      (id)model, sel("evaluateWithQoS:options:request:error:"), qos, ns_mutable_dict(), (id)request, &error);
  if (!ok) put_error(err, errlen, "evaluateWithQoS:options:request:error:", error);
  objc_autoreleasePoolPop(pool);
  return ok ? 1 : 0;
}

void ane_model_unload(ane_obj model, unsigned qos) {
  void* pool = objc_autoreleasePoolPush();
  id error = (id)0;
  ((BOOL(*)(id, SEL, unsigned int, id*))objc_msgSend)((id)model, sel("unloadWithQoS:error:"), qos, &error);
  objc_autoreleasePoolPop(pool);
}

static void cf_set_int(CFMutableDictionaryRef d, CFStringRef key, long v) {
  CFNumberRef n = CFNumberCreate(kCFAllocatorDefault, kCFNumberLongType, &v);
  CFDictionarySetValue(d, key, n);
  CFRelease(n);
}

ane_obj ane_surface_create(size_t bytes, char* err, size_t errlen) {
  CFMutableDictionaryRef props = CFDictionaryCreateMutable(kCFAllocatorDefault, 0, &kCFTypeDictionaryKeyCallBacks,
                                                           &kCFTypeDictionaryValueCallBacks);
  cf_set_int(props, kIOSurfaceWidth, (long)bytes);
  cf_set_int(props, kIOSurfaceHeight, 1);
  cf_set_int(props, kIOSurfaceBytesPerElement, 1);
  cf_set_int(props, kIOSurfaceBytesPerRow, (long)bytes);
  cf_set_int(props, kIOSurfaceAllocSize, (long)bytes);
  cf_set_int(props, kIOSurfacePixelFormat, 0);
  IOSurfaceRef s = IOSurfaceCreate(props);
  CFRelease(props);
  if (!s) snprintf(err, errlen, "IOSurfaceCreate failed for %zu bytes", bytes);
  return (ane_obj)s;
}

void* ane_surface_lock(ane_obj surface, int read_only) {
  IOSurfaceLock((IOSurfaceRef)surface, read_only ? kIOSurfaceLockReadOnly : 0, NULL);
  return IOSurfaceGetBaseAddress((IOSurfaceRef)surface);
}

void ane_surface_unlock(ane_obj surface, int read_only) {
  IOSurfaceUnlock((IOSurfaceRef)surface, read_only ? kIOSurfaceLockReadOnly : 0, NULL);
}

ane_obj ane_request_create(const ane_obj* inputs, int n_inputs, ane_obj output, char* err, size_t errlen) {
  void* pool = objc_autoreleasePoolPush();
  id wrapped[16], indices[16];
  if (n_inputs < 1 || n_inputs > 15) {
    snprintf(err, errlen, "a request takes 1 to 15 inputs, not %d", n_inputs);
    objc_autoreleasePoolPop(pool);
    return (ane_obj)0;
  }
  for (int i = 0; i < n_inputs; ++i) {
    wrapped[i] = send1((id)g_surface_object, "objectWithIOSurface:", (id)inputs[i]);
    indices[i] = ns_int(i);
  }
  id out = send1((id)g_surface_object, "objectWithIOSurface:", (id)output);
  id zero = ns_int(0);
  id req = ((id(*)(id, SEL, id, id, id, id, id, id, id))objc_msgSend)(
      (id)g_request, sel("requestWithInputs:inputIndices:outputs:outputIndices:weightsBuffer:perfStats:procedureIndex:"),
      ns_array(wrapped, (unsigned long)n_inputs), ns_array(indices, (unsigned long)n_inputs), ns_array(&out, 1),
      ns_array(&zero, 1), (id)0, (id)0, zero);
  if (!req) snprintf(err, errlen, "requestWithInputs:... returned nil");
  req = retain(req);
  objc_autoreleasePoolPop(pool);
  return (ane_obj)req;
}

void ane_release(ane_obj obj) {
  if (obj) CFRelease((CFTypeRef)obj);  /* objects and IOSurfaces alike are CF-retain counted */
}

int ane_device_subtype(char* out, size_t outlen) {
  void* pool = objc_autoreleasePoolPush();
  Class info = objc_getClass("_ANEDeviceInfo");
  id sub = info ? send0((id)info, "aneSubType") : (id)0;
  int ok = sub != (id)0;
  snprintf(out, outlen, "%s", ok ? ((const char* (*)(id, SEL))objc_msgSend)(sub, sel("UTF8String")) : "unknown");
  objc_autoreleasePoolPop(pool);
  return ok;
}
