/* The C API's gradients and parameter table, on stories260K: the table tiles the flat layout,
 * names come back with the sized-buffer convention, anetrain_backward's loss is the forward
 * pass's, a second call gives the same gradients (nothing accumulates between calls), and
 * every misuse is an error. (Python's test compares each gradient with `anetrain grad`'s.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

void test_grad(anetrain_model* model, const int32_t* ids, int64_t params_in_info) {
  enum { T = 16 };
  size_t count = 0, params = 0;
  CHECK(anetrain_model_tensor_count(model, &count, &params) == ANETRAIN_OK && count == 2 + 5 * 9 &&
            (int64_t)params == params_in_info,
        "parameter table: 47 tensors (embedding, 5 layers × 9, final norm), as many floats as the model's info says");

  char name[64];
  size_t len = 4;
  int64_t shape[2] = {0, 0};
  int32_t rank = 0;
  size_t offset = 99;
  CHECK(anetrain_model_tensor(model, 0, name, &len, shape, &rank, &offset) == ANETRAIN_ERR_BUFFER &&
            len == strlen("model.embed_tokens.weight") + 1,
        "a short name buffer: buffer error with the size needed (NUL included)");
  len = sizeof name;
  CHECK(anetrain_model_tensor(model, 0, name, &len, shape, &rank, &offset) == ANETRAIN_OK &&
            strcmp(name, "model.embed_tokens.weight") == 0 && shape[0] == 512 && shape[1] == 64 && rank == 2 && offset == 0,
        "tensor 0: the embedding [512, 64] at offset 0");
  /* The table tiles [0, params): each tensor starts where the previous one ended. */
  size_t next = 0;
  int tiles = 1;
  for (size_t i = 0; i < count; ++i) {
    len = sizeof name;
    if (anetrain_model_tensor(model, i, name, &len, shape, &rank, &offset) != ANETRAIN_OK || offset != next) tiles = 0;
    next = offset + (size_t)shape[0] * (size_t)shape[1];
  }
  CHECK(tiles && next == params && strcmp(name, "model.norm.weight") == 0 && rank == 1 && shape[1] == 1,
        "the tensors tile the flat layout, the last is the final norm (rank 1)");
  CHECK(anetrain_model_tensor(model, 0, NULL, &len, NULL, NULL, NULL) == ANETRAIN_OK && len == 26,
        "a NULL name asks for its size");
  CHECK(anetrain_model_tensor(model, count, name, &len, shape, &rank, &offset) == ANETRAIN_ERR_ARGUMENT,
        "an index past the table is refused");

  float* g1 = malloc(params * sizeof(float));
  float* g2 = malloc(params * sizeof(float));
  double loss = -1, fwd_loss = -2;
  CHECK(anetrain_forward(model, ids, ids + 1, 1, T, NULL, &fwd_loss) == ANETRAIN_OK &&
            anetrain_backward(model, ids, ids + 1, 1, T, g1, params, &loss) == ANETRAIN_OK && loss == fwd_loss,
        "backward's loss is the forward pass's, bit for bit");
  double sq = 0;
  int finite = 1;
  for (size_t i = 0; i < params; ++i) {
    finite &= isfinite(g1[i]) != 0;
    sq += (double)g1[i] * g1[i];
  }
  CHECK(finite && sq > 0, "the gradients are finite and not all zero");
  CHECK(anetrain_backward(model, ids, ids + 1, 1, T, g2, params, NULL) == ANETRAIN_OK &&
            memcmp(g1, g2, params * sizeof(float)) == 0,
        "a second call gives the same gradients (they do not accumulate across calls)");
  int32_t bad[4] = {1, 2, 3, 900};
  CHECK(anetrain_backward(model, ids, bad, 1, 4, g1, params, NULL) == ANETRAIN_ERR_INPUT &&
            strstr(anetrain_last_error(), "900"),
        "a target outside the vocabulary is refused by value");
  CHECK(anetrain_backward(model, ids, ids + 1, 1, T, g1, params - 1, NULL) == ANETRAIN_ERR_ARGUMENT &&
            strstr(anetrain_last_error(), "parameters"),
        "a gradient buffer of the wrong size is refused");
  CHECK(anetrain_backward(model, NULL, ids + 1, 1, T, g1, params, NULL) == ANETRAIN_ERR_ARGUMENT, "NULL tokens");
  CHECK(anetrain_backward(model, ids, NULL, 1, T, g1, params, NULL) == ANETRAIN_ERR_ARGUMENT, "NULL targets");
  CHECK(anetrain_backward(model, ids, ids + 1, 1, T, NULL, params, NULL) == ANETRAIN_ERR_ARGUMENT, "NULL grads");
  CHECK(anetrain_backward(model, ids, ids + 1, 0, T, g1, params, NULL) == ANETRAIN_ERR_ARGUMENT, "batch 0");
  CHECK(anetrain_backward((anetrain_model*)g1, ids, ids + 1, 1, T, g1, params, NULL) == ANETRAIN_ERR_HANDLE &&
            anetrain_model_tensor_count(NULL, &count, NULL) == ANETRAIN_ERR_HANDLE,
        "a pointer that is no model handle, and NULL");
  free(g1);
  free(g2);
}
