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

#include "framework_names.h"

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
static const char* utf8(id str) { return str ? ((const char* (*)(id, SEL))objc_msgSend)(str, sel("UTF8String")) : 0; }

/* A failure without an NSError: the caller writes err->description. */
static void no_nserror(ane_error* err, const char* call) {
  snprintf(err->call, sizeof err->call, "%s", call);
  err->description[0] = 0;
  err->domain[0] = 0;
  err->code = 0;
}

/* `description` rather than localizedDescription: it also carries the domain, the code and the
 * userInfo (an underlying error, a compiler message) that localizedDescription drops. */
static void put_nserror(ane_error* err, const char* call, id nserror) {
  no_nserror(err, call);
  if (!nserror) {
    snprintf(err->description, sizeof err->description, "returned NO without an NSError");
    return;
  }
  const char* text = utf8(send0(nserror, "description"));
  const char* domain = utf8(send0(nserror, "domain"));
  snprintf(err->description, sizeof err->description, "%s", text ? text : "(no description)");
  snprintf(err->domain, sizeof err->domain, "%s", domain ? domain : "(no domain)");
  err->code = ((long (*)(id, SEL))objc_msgSend)(nserror, sel("code"));
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

int ane_open(ane_error* err) {
  if (!dlopen(kFramework, RTLD_NOW)) {
    no_nserror(err, "dlopen");
    snprintf(err->description, sizeof err->description, "cannot load %s: %s", kFramework, dlerror());
    return 0;
  }
  g_descriptor = objc_getClass(ANE_CLASS_DESCRIPTOR);
  g_model = objc_getClass(ANE_CLASS_MODEL);
  g_request = objc_getClass(ANE_CLASS_REQUEST);
  g_surface_object = objc_getClass(ANE_CLASS_SURFACE_OBJECT);
  return 1;
}

int ane_has_class(const char* cls) { return objc_getClass(cls) != (Class)0; }

int ane_responds(const char* cls, const char* selector, int class_method) {
  Class c = objc_getClass(cls);
  if (!c) return 0;
  /* A class method is an instance method of the metaclass. */
  return class_respondsToSelector(class_method ? object_getClass((id)c) : c, sel(selector)) ? 1 : 0;
}

int ane_os_version(char* out, size_t outlen) {
  void* pool = objc_autoreleasePoolPush();
  id info = send0((id)objc_getClass("NSProcessInfo"), "processInfo");
  const char* v = info ? utf8(send0(info, "operatingSystemVersionString")) : 0;
  snprintf(out, outlen, "%s", v ? v : "unknown");
  objc_autoreleasePoolPop(pool);
  return v != 0;
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
                         const void* const* data, const size_t* sizes, ane_error* err) {
  void* pool = objc_autoreleasePoolPush();
  id weights = ns_mutable_dict(); /* empty rather than nil: nil fails the compile silently (seed 20cd236) */
  for (int i = 0; i < n_weights; ++i) {
    id entry = ns_mutable_dict();
    ns_set(entry, ns_string("offset"), ns_int(0));
    ns_set(entry, ns_string("data"), ns_data(data[i], sizes[i]));
    ns_set(weights, ns_string(keys[i]), entry);
  }
  id text = ns_data(mil, mil_len);
  id desc = ((id(*)(id, SEL, id, id, id))objc_msgSend)((id)g_descriptor, sel(ANE_SEL_DESCRIPTOR_CREATE), text, weights,
                                                       (id)0);
  id model = desc ? send1((id)g_model, ANE_SEL_MODEL_CREATE, desc) : (id)0;
  if (!desc) {
    no_nserror(err, ANE_SEL_DESCRIPTOR_CREATE);
    snprintf(err->description, sizeof err->description, "returned nil (the MIL text or the weights were refused)");
  } else if (!model) {
    no_nserror(err, ANE_SEL_MODEL_CREATE);
    snprintf(err->description, sizeof err->description, "returned nil");
  }
  model = retain(model);
  objc_autoreleasePoolPop(pool);
  return (ane_obj)model;
}

int ane_model_id(ane_obj model, char* out, size_t outlen) {
  void* pool = objc_autoreleasePoolPush();
  const char* hex = utf8(send0((id)model, ANE_SEL_MODEL_ID));
  /* A truncated identifier would name another folder than the compiler reads: report none. */
  int n = hex ? snprintf(out, outlen, "%s", hex) : -1;
  int ok = n >= 0 && (size_t)n < outlen;
  if (!ok && outlen) out[0] = 0;
  objc_autoreleasePoolPop(pool);
  return ok;
}

typedef BOOL (*qos_op_fn)(id, SEL, unsigned int, id, id*);

static int qos_op(ane_obj model, const char* selector, unsigned qos, ane_error* err) {
  void* pool = objc_autoreleasePoolPush();
  id error = (id)0;
  BOOL ok = ((qos_op_fn)objc_msgSend)((id)model, sel(selector), qos, ns_mutable_dict(), &error);
  if (!ok) put_nserror(err, selector, error); /* read inside the pool that owns the NSError */
  objc_autoreleasePoolPop(pool);
  return ok ? 1 : 0;
}

int ane_model_compile(ane_obj model, unsigned qos, ane_error* err) { return qos_op(model, ANE_SEL_COMPILE, qos, err); }
int ane_model_load(ane_obj model, unsigned qos, ane_error* err) { return qos_op(model, ANE_SEL_LOAD, qos, err); }

int ane_model_evaluate(ane_obj model, ane_obj request, unsigned qos, ane_error* err) {
  void* pool = objc_autoreleasePoolPush();
  id error = (id)0;
  BOOL ok = ((BOOL(*)(id, SEL, unsigned int, id, id, id*))objc_msgSend)((id)model, sel(ANE_SEL_EVALUATE), qos,
                                                                        ns_mutable_dict(), (id)request, &error);
  if (!ok) put_nserror(err, ANE_SEL_EVALUATE, error);
  objc_autoreleasePoolPop(pool);
  return ok ? 1 : 0;
}

void ane_model_unload(ane_obj model, unsigned qos) {
  void* pool = objc_autoreleasePoolPush();
  id error = (id)0;
  ((BOOL(*)(id, SEL, unsigned int, id*))objc_msgSend)((id)model, sel(ANE_SEL_UNLOAD), qos, &error);
  objc_autoreleasePoolPop(pool);
}

static void cf_set_int(CFMutableDictionaryRef d, CFStringRef key, long v) {
  CFNumberRef n = CFNumberCreate(kCFAllocatorDefault, kCFNumberLongType, &v);
  CFDictionarySetValue(d, key, n);
  CFRelease(n);
}

ane_obj ane_surface_create(size_t bytes, ane_error* err) {
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
  if (!s) {
    no_nserror(err, "IOSurfaceCreate");
    snprintf(err->description, sizeof err->description, "returned NULL for %zu bytes", bytes);
  }
  return (ane_obj)s;
}

void* ane_surface_lock(ane_obj surface, int read_only) {
  if (IOSurfaceLock((IOSurfaceRef)surface, read_only ? kIOSurfaceLockReadOnly : 0, NULL) != 0) return NULL;
  return IOSurfaceGetBaseAddress((IOSurfaceRef)surface);
}

void ane_surface_unlock(ane_obj surface, int read_only) {
  IOSurfaceUnlock((IOSurfaceRef)surface, read_only ? kIOSurfaceLockReadOnly : 0, NULL);
}

ane_obj ane_request_create(const ane_obj* inputs, int n_inputs, ane_obj output, ane_error* err) {
  void* pool = objc_autoreleasePoolPush();
  id wrapped[16], indices[16];
  if (n_inputs < 1 || n_inputs > 15) {
    no_nserror(err, ANE_SEL_REQUEST_CREATE);
    snprintf(err->description, sizeof err->description, "a request takes 1 to 15 inputs, not %d", n_inputs);
    objc_autoreleasePoolPop(pool);
    return (ane_obj)0;
  }
  for (int i = 0; i < n_inputs; ++i) {
    wrapped[i] = send1((id)g_surface_object, ANE_SEL_WRAP_SURFACE, (id)inputs[i]);
    indices[i] = ns_int(i);
  }
  id out = send1((id)g_surface_object, ANE_SEL_WRAP_SURFACE, (id)output);
  id zero = ns_int(0);
  id req = ((id(*)(id, SEL, id, id, id, id, id, id, id))objc_msgSend)(
      (id)g_request, sel(ANE_SEL_REQUEST_CREATE), ns_array(wrapped, (unsigned long)n_inputs),
      ns_array(indices, (unsigned long)n_inputs), ns_array(&out, 1), ns_array(&zero, 1), (id)0, (id)0, zero);
  if (!req) {
    no_nserror(err, ANE_SEL_REQUEST_CREATE);
    snprintf(err->description, sizeof err->description, "returned nil");
  }
  req = retain(req);
  objc_autoreleasePoolPop(pool);
  return (ane_obj)req;
}

void ane_release(ane_obj obj) {
  if (obj) CFRelease((CFTypeRef)obj); /* objects and IOSurfaces alike are CF-retain counted */
}

int ane_device_subtype(char* out, size_t outlen) {
  void* pool = objc_autoreleasePoolPush();
  Class info = objc_getClass(ANE_CLASS_DEVICE_INFO);
  const char* sub = info && ane_responds(ANE_CLASS_DEVICE_INFO, ANE_SEL_DEVICE_SUBTYPE, 1)
                        ? utf8(send0((id)info, ANE_SEL_DEVICE_SUBTYPE))
                        : 0;
  snprintf(out, outlen, "%s", sub ? sub : "unknown");
  objc_autoreleasePoolPop(pool);
  return sub != 0;
}
