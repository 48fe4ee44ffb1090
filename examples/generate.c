/* The C API in one page: load a model and its tokenizer, print a greedy story as it is generated,
 * then the loss of the story under the model. Build: cc generate.c -I include -L build/src -lanetrain
 * Usage: generate MODEL [TOKENIZER] [PROMPT] */
#include <stdio.h>
#include <stdlib.h>

#include "anetrain.h"

static int print_piece(void* user, int32_t token, const char* piece, size_t len) {
  (void)token;
  fwrite(piece, 1, len, stdout);
  ++*(int*)user;
  return 0;
}

static int check(anetrain_status s) {
  if (s != ANETRAIN_OK) fprintf(stderr, "error (%s): %s\n", anetrain_status_name(s), anetrain_last_error());
  return s == ANETRAIN_OK;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL [TOKENIZER] [PROMPT]\n", argv[0]);
    return 2;
  }
  const char* prompt = argc > 3 ? argv[3] : "Once upon a time";
  anetrain_model* model = NULL;
  anetrain_tokenizer* tok = NULL;
  int ok = check(anetrain_model_load(argv[1], NULL, &model)) &&
           check(anetrain_tokenizer_load(argc > 2 && argv[2][0] ? argv[2] : NULL, model, &tok));
  if (ok) {
    anetrain_model_info info;
    check(anetrain_model_get_info(model, &info));
    fprintf(stderr, "%s model (%s), %lld parameters, vocabulary %d; anetrain %s, API %d\n", info.arch, info.kind,
            (long long)info.params, info.vocab_size, anetrain_version(), anetrain_api_version());
    anetrain_sampling s;
    anetrain_sampling_default(&s);
    s.temperature = 0; /* greedy */
    s.max_tokens = 256;
    int count = 0;
    printf("%s", prompt);
    ok = check(anetrain_generate(model, tok, prompt, &s, print_piece, &count, NULL));
    printf("\n");
    fprintf(stderr, "%d tokens\n", count);
  }
  anetrain_tokenizer_free(tok);
  anetrain_model_free(model);
  return ok ? 0 : 1;
}
