/* anetrain's C API: load a model (any format anetrain reads) and its tokenizer, encode and decode
 * text, generate with a per-token callback, run the forward pass for logits and loss, and train.
 *
 * Conventions:
 *  - Every function returns an anetrain_status; ANETRAIN_OK is 0. On an error,
 *    anetrain_last_error() gives the engine's message (per thread, valid until this thread's next
 *    call into the API). No C++ exception crosses this boundary.
 *  - Handles are opaque. Passing NULL, a handle of another kind, or one already freed is an
 *    ANETRAIN_ERR_HANDLE error, never a crash: live handles are registered, and a handle is
 *    checked against the registry before it is used. Freeing NULL or a freed handle does nothing.
 *  - Sizes are element counts. A buffer that is too small gives ANETRAIN_ERR_BUFFER with the
 *    needed count in the size out-parameter, so the caller can retry.
 *  - A handle may be used from one thread at a time; different handles from different threads.
 *
 * Training: a session created from options (the keys of run.json), then step / evaluate /
 * checkpoint in any order, resumed from its directory like `anetrain train --resume`.
 *
 * MIL programs: a Neural Engine program file (MIL text and its weight blobs) compiled on a named
 * backend and run with fp32 buffers, through the same executors the ane backends use.
 *
 * Versioning: ANETRAIN_API_VERSION changes when a signature or a struct changes;
 * anetrain_api_version() says which version the library was built with.
 *   1: models, tokenizers, generation, forward, training sessions.
 *   2: MIL programs (anetrain_mil_*), the status ANETRAIN_ERR_UNSUPPORTED, gradients
 *      (anetrain_backward) and the parameter table (anetrain_model_tensor*); nothing of 1 changed.
 */
#ifndef ANETRAIN_H
#define ANETRAIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ANETRAIN_API_VERSION 2

#if defined(__GNUC__)
#define ANETRAIN_API __attribute__((visibility("default")))
#else
#define ANETRAIN_API
#endif

typedef enum anetrain_status {
  ANETRAIN_OK = 0,
  ANETRAIN_ERR_ARGUMENT = 1, /* a NULL pointer, a size out of range, a bad option value */
  ANETRAIN_ERR_HANDLE = 2,   /* NULL, freed, or not a handle of this kind */
  ANETRAIN_ERR_INPUT = 3,    /* a file that is missing, unreadable or malformed; a token out of range */
  ANETRAIN_ERR_BUFFER = 4,   /* the output buffer is too small; the needed size was written */
  ANETRAIN_ERR_INTERNAL = 5, /* anything else (out of memory, a bug): the message says what */
  ANETRAIN_ERR_UNSUPPORTED = 6 /* not built into this library (the "ane" backend off macOS) */
} anetrain_status;

typedef struct anetrain_model anetrain_model;
typedef struct anetrain_tokenizer anetrain_tokenizer;
typedef struct anetrain_trainer anetrain_trainer;
typedef struct anetrain_mil anetrain_mil;

typedef struct anetrain_model_info {
  int32_t vocab_size, dim, n_layers, n_heads, n_kv_heads, hidden_dim, max_seq_len;
  int64_t params;
  char arch[16];   /* "llama", "qwen3" */
  char kind[16];   /* where it came from: "llama2c", "gguf", "hf", "checkpoint", "preset", ... */
} anetrain_model_info;

typedef struct anetrain_sampling {
  float temperature; /* 0 = greedy */
  float top_p;       /* (0, 1]; 1 = off */
  int32_t top_k;     /* 0 = off */
  uint64_t seed;
  int32_t max_tokens;  /* tokens to generate at most; 0 = up to the context */
  int32_t stop_at_eos; /* non-zero: stop at the tokenizer's end-of-sequence token */
} anetrain_sampling;

/* Called once per generated token with its id and the text it adds (UTF-8, not terminated).
 * Return 0 to go on, non-zero to stop. */
typedef int (*anetrain_token_callback)(void* user, int32_t token, const char* piece, size_t piece_len);

ANETRAIN_API int anetrain_api_version(void);
ANETRAIN_API const char* anetrain_version(void); /* "0.1.0 (commit)" */
ANETRAIN_API const char* anetrain_last_error(void);
ANETRAIN_API const char* anetrain_status_name(anetrain_status s);
/* Threads the engine uses (0 = all cores). Process-wide. */
ANETRAIN_API anetrain_status anetrain_set_threads(int threads);

/* path: any model anetrain reads (llama2.c .bin, GGUF, safetensors / HF folder, anetrain
 * checkpoint or run directory, preset name); backend: "cpu" (NULL), "ref", "ane-sim", ... */
ANETRAIN_API anetrain_status anetrain_model_load(const char* path, const char* backend, anetrain_model** out);
ANETRAIN_API void anetrain_model_free(anetrain_model* model);
ANETRAIN_API anetrain_status anetrain_model_get_info(const anetrain_model* model, anetrain_model_info* out);

/* path: tokenizer.json, tokenizer.bin or a GGUF; NULL = the one next to the model (or in it). */
ANETRAIN_API anetrain_status anetrain_tokenizer_load(const char* path, const anetrain_model* model,
                                                     anetrain_tokenizer** out);
ANETRAIN_API void anetrain_tokenizer_free(anetrain_tokenizer* tok);
ANETRAIN_API anetrain_status anetrain_tokenizer_special(const anetrain_tokenizer* tok, int32_t* bos, int32_t* eos,
                                                        int32_t* vocab_size);
/* text → ids (add_bos: prepend BOS where the tokenizer has one). *n_ids: in, the capacity of ids;
 * out, the number of ids (also when ANETRAIN_ERR_BUFFER). */
ANETRAIN_API anetrain_status anetrain_encode(const anetrain_tokenizer* tok, const char* text, size_t text_len,
                                             int add_bos, int32_t* ids, size_t* n_ids);
/* ids → UTF-8 text, NUL-terminated. *len: in, the capacity of text (with the NUL); out, the
 * length without the NUL (the needed length when ANETRAIN_ERR_BUFFER). */
ANETRAIN_API anetrain_status anetrain_decode(const anetrain_tokenizer* tok, const int32_t* ids, size_t n_ids,
                                             char* text, size_t* len);

ANETRAIN_API void anetrain_sampling_default(anetrain_sampling* s); /* T=0.8, top-p 0.9, eos stops */
/* Encodes the prompt (with BOS where the tokenizer has one), then samples. callback may be NULL;
 * *n_generated (may be NULL) gets the count. */
ANETRAIN_API anetrain_status anetrain_generate(anetrain_model* model, const anetrain_tokenizer* tok,
                                               const char* prompt, const anetrain_sampling* sampling,
                                               anetrain_token_callback callback, void* user,
                                               int32_t* n_generated);

/* The training forward pass over tokens[batch*seq]. logits (may be NULL): batch*seq*vocab floats,
 * row-major; loss (may be NULL, needs targets): mean cross-entropy over targets[batch*seq]. */
ANETRAIN_API anetrain_status anetrain_forward(anetrain_model* model, const int32_t* tokens, const int32_t* targets,
                                              int32_t batch, int32_t seq, float* logits, double* loss);

/* The parameter table, for finding a tensor in the flat gradient layout of anetrain_backward:
 * count (may be NULL) gets the number of tensors, params (may be NULL) the number of floats. */
ANETRAIN_API anetrain_status anetrain_model_tensor_count(const anetrain_model* model, size_t* count, size_t* params);
/* Tensor `index` (0 ≤ index < count): its Hugging Face name (NUL-terminated; *name_len in: the
 * buffer's size, out: the bytes needed with the NUL — name may be NULL to ask), shape[2] ([out, in],
 * 1 for a vector's second), rank (1 or 2), and offset in floats into the flat layout. Any
 * out-parameter may be NULL. */
ANETRAIN_API anetrain_status anetrain_model_tensor(const anetrain_model* model, size_t index, char* name,
                                                   size_t* name_len, int64_t* shape, int32_t* rank, size_t* offset);
/* One forward and backward pass over tokens[batch*seq] against targets[batch*seq]: grads gets
 * ∂(mean cross-entropy)/∂θ for every parameter, flat, in the table's order (grads_count must be
 * the params of anetrain_model_tensor_count); loss (may be NULL) the mean cross-entropy. What
 * `anetrain grad` writes. The model's weights are not changed. */
ANETRAIN_API anetrain_status anetrain_backward(anetrain_model* model, const int32_t* tokens, const int32_t* targets,
                                               int32_t batch, int32_t seq, float* grads, size_t grads_count,
                                               double* loss);

/* A training run, stepped by the caller. options_json: an object with the keys of a run's
 * run.json (what `anetrain train` writes; docs/api.md lists them) — "model", "data" (shard paths),
 * "out" (the run directory) are needed; others default as in `anetrain train` (precision: fp32
 * unless given). Writes RUN/run.json and telemetry as the CLI does, nothing on the terminal.
 * Unknown keys and wrong types are ANETRAIN_ERR_ARGUMENT. */
ANETRAIN_API anetrain_status anetrain_trainer_create(const char* options_json, anetrain_trainer** out);
/* Continues RUN from its latest checkpoint with the settings in its run.json; bit-exact. */
ANETRAIN_API anetrain_status anetrain_trainer_resume(const char* run_dir, anetrain_trainer** out);
/* Ends the run's telemetry ("done" after the last step, else "paused") and frees it. */
ANETRAIN_API void anetrain_trainer_free(anetrain_trainer* trainer);
/* One optimizer step. loss (may be NULL): its mean loss (NaN when non-finite; the update was then
 * skipped); step (may be NULL): steps done. Past the run's last step: ANETRAIN_ERR_ARGUMENT. */
ANETRAIN_API anetrain_status anetrain_trainer_step(anetrain_trainer* trainer, double* loss, int64_t* step);
/* The validation loss over the run's fixed validation batches (needs val_data or val_frac). */
ANETRAIN_API anetrain_status anetrain_trainer_evaluate(anetrain_trainer* trainer, double* val_loss);
/* Writes RUN/ckpt/step-N (atomically; older ones pruned to "keep"). path (may be NULL): the
 * directory, NUL-terminated; *len: in, its capacity; out, the length (ANETRAIN_ERR_BUFFER when
 * short: the checkpoint is written all the same). */
ANETRAIN_API anetrain_status anetrain_trainer_checkpoint(anetrain_trainer* trainer, char* path, size_t* len);
/* Steps done and the run's total. */
ANETRAIN_API anetrain_status anetrain_trainer_progress(const anetrain_trainer* trainer, int64_t* step, int64_t* total);

/* A MIL program (the seed's text form, one input and one output, fp16 or fp32 tensors) compiled on
 * backend "ane-sim" (the fp16 simulator, any OS), "ane-fake" (the hardware runtime's
 * compile/load/evaluate sequence over a fake of the private framework that executes in ane-sim) or
 * "ane" (the Neural Engine; macOS builds only, elsewhere ANETRAIN_ERR_UNSUPPORTED).
 * weights_dir: the folder @model_path stands for (NULL = the program's folder); every weight blob
 * is read at compile time. Each compile counts toward the process's compile budget (as on the
 * hardware, about 119; "ane" and "ane-fake" refuse past 110); freeing does not give it back.
 * A malformed or missing file, or a program with another arity, is ANETRAIN_ERR_INPUT naming the
 * file. */
ANETRAIN_API anetrain_status anetrain_mil_compile(const char* backend, const char* program_path,
                                                  const char* weights_dir, anetrain_mil** out);
ANETRAIN_API void anetrain_mil_free(anetrain_mil* mil);
/* which: 0 the input, 1 the output. count (may be NULL): its element count. dims (may be NULL
 * with *rank 0): *rank in, the capacity of dims; out, the rank (also when ANETRAIN_ERR_BUFFER).
 * rank may be NULL when dims is. */
ANETRAIN_API anetrain_status anetrain_mil_shape(const anetrain_mil* mil, int which, int64_t* dims, size_t* rank,
                                                size_t* count);
/* One evaluation: input_count must be the input's element count (row-major, fp32; rounded to fp16
 * where the program's input is fp16); *output_count in, the capacity of output; out, the output's
 * element count (ANETRAIN_ERR_BUFFER when short, nothing run). */
ANETRAIN_API anetrain_status anetrain_mil_run(anetrain_mil* mil, const float* input, size_t input_count,
                                              float* output, size_t* output_count);

#ifdef __cplusplus
}
#endif
#endif /* ANETRAIN_H */
