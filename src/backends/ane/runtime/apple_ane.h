/* The private Neural Engine runtime (AppleNeuralEngine.framework) as a small C API: exactly the
 * calls the seed makes (compile/load/evaluate/unload of an in-memory MIL model, IOSurface I/O).
 * Implemented in apple_ane.c on macOS only; AppleApi (apple_api.cpp) adapts it to PrivateApi.
 * Every function that can fail fills an ane_error: the NSError's description, domain and code
 * when the framework gave one, else what went wrong. */
#ifndef ANETRAIN_APPLE_ANE_H
#define ANETRAIN_APPLE_ANE_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void* ane_obj;

typedef struct {
  char call[160];         /* the selector or function that failed */
  char description[1024]; /* NSError description, or our own words when there was no NSError */
  char domain[256];       /* NSError domain; "" when there was no NSError */
  long code;              /* NSError code */
} ane_error;

/* dlopen the framework and resolve the classes. The classes and selectors are checked by the
 * caller (ane_has_class, ane_responds) before any other call: those use them unchecked. */
int ane_open(ane_error* err);
int ane_has_class(const char* cls);
int ane_responds(const char* cls, const char* selector, int class_method);
int ane_os_version(char* out, size_t outlen); /* NSProcessInfo operatingSystemVersionString */
const char* ane_temp_dir(void);               /* NSTemporaryDirectory() */
/* _ANEInMemoryModelDescriptor modelWithMILText:weights:optionsPlist: + _ANEInMemoryModel
 * inMemoryModelWithDescriptor:. Weights: n files, keyed "@model_path/weights/x.bin". */
ane_obj ane_model_create(const char* mil, size_t mil_len, int n_weights, const char* const* keys,
                         const void* const* data, const size_t* sizes, ane_error* err);
/* hexStringIdentifier; 0 (and out = "") when nil or longer than outlen - 1. */
int ane_model_id(ane_obj model, char* out, size_t outlen);
int ane_model_compile(ane_obj model, unsigned qos, ane_error* err);
int ane_model_load(ane_obj model, unsigned qos, ane_error* err);
int ane_model_evaluate(ane_obj model, ane_obj request, unsigned qos, ane_error* err);
void ane_model_unload(ane_obj model, unsigned qos);
/* An untyped linear IOSurface of `bytes` bytes (Width = BytesPerRow = AllocSize = bytes,
 * Height = 1, BytesPerElement = 1, PixelFormat = 0). */
ane_obj ane_surface_create(size_t bytes, ane_error* err);
void* ane_surface_lock(ane_obj surface, int read_only); /* NULL when IOSurfaceLock fails */
void ane_surface_unlock(ane_obj surface, int read_only);
/* _ANERequest over wrapped surfaces (_ANEIOSurfaceObject), indices 0..n-1, procedure 0. */
ane_obj ane_request_create(const ane_obj* inputs, int n_inputs, ane_obj output, ane_error* err);
void ane_release(ane_obj obj);
int ane_device_subtype(char* out, size_t outlen); /* _ANEDeviceInfo aneSubType, e.g. "H16G" */

#ifdef __cplusplus
}
#endif
#endif
