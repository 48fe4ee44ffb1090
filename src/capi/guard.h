// What every C API entry point shares: `guarded` runs a body and turns any exception into a
// status plus this thread's message (nothing escapes into C), and `Registry` holds the live
// handles of one kind, so a handle is checked before it is touched and a freed one is an error.
#pragma once
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

#include "anetrain.h"
#include "core/error.h"
#include "core/signal_shield.h"
#include "core/threads.h"

namespace anetrain::capi {

extern thread_local std::string t_error;

// A caller's mistake with its status; anything else thrown is classified in `guarded`.
struct ApiError {
  anetrain_status status;
  std::string message;
};

[[noreturn]] inline void refuse(anetrain_status s, const std::string& msg) { throw ApiError{s, msg}; }

inline void need(const void* p, const char* what) {
  if (!p) refuse(ANETRAIN_ERR_ARGUMENT, std::string(what) + " is NULL");
}

// The capacity *n of a caller's output buffer `out`, read before anything is written back: a NULL
// buffer is allowed only with capacity 0 (the caller asking how much room it needs).
inline size_t output_capacity(const void* out, const char* out_name, const size_t* n) {
  const size_t capacity = *n;
  if (!out && capacity) refuse(ANETRAIN_ERR_ARGUMENT, std::string(out_name) + " is NULL but its capacity is not 0");
  return capacity;
}

template <class Body>
anetrain_status guarded(const char* fn, Body&& body) {
  // The host's signals wait for the call's end: one handled on a thread inside oneDNN's f32 GEMM
  // corrupts the heap (core/signal_shield.h), and a Python Ctrl-C arrives as a handled SIGINT.
  const LibraryCallSignals hold_signals;
  try {
    use_library_threads();  // the count anetrain_set_threads chose, on whichever thread calls
    body();
    t_error.clear();
    return ANETRAIN_OK;
  } catch (const ApiError& e) {
    t_error = std::string(fn) + ": " + e.message;
    return e.status;
  } catch (const Error& e) {  // the engine's own: bad files, bad data, bad settings
    t_error = std::string(fn) + ": " + e.what();
    return ANETRAIN_ERR_INPUT;
  } catch (const std::bad_alloc&) {
    t_error = std::string(fn) + ": out of memory";
    return ANETRAIN_ERR_INTERNAL;
  } catch (const std::exception& e) {
    t_error = std::string(fn) + ": " + e.what();
    return ANETRAIN_ERR_INTERNAL;
  } catch (...) {
    t_error = std::string(fn) + ": unknown error";
    return ANETRAIN_ERR_INTERNAL;
  }
}

// Live handles of one kind. Lookups never dereference the pointer they are given. A call holds
// the shared_ptr that get() returns until it returns, so a handle freed meanwhile (from a
// callback, or another thread) is destroyed only after the call that uses it is done.
template <class T>
class Registry {
 public:
  T* add(std::unique_ptr<T> p) {
    std::lock_guard<std::mutex> g(mu_);
    T* raw = p.get();
    live_[raw] = std::shared_ptr<T>(std::move(p));
    return raw;
  }
  std::shared_ptr<T> get(const T* p) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) refuse(ANETRAIN_ERR_HANDLE, "not a live handle of this kind (NULL, freed, or another kind)");
    return it->second;
  }
  std::shared_ptr<T> take(const T* p) {  // nullptr when not live: freeing twice does nothing
    std::lock_guard<std::mutex> g(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return nullptr;
    auto owned = std::move(it->second);
    live_.erase(it);
    return owned;
  }

 private:
  std::mutex mu_;
  std::unordered_map<const T*, std::shared_ptr<T>> live_;
};

}  // namespace anetrain::capi
