/* The C API as a C program meets it (plain C99, only anetrain.h and libanetrain.so): the golden
 * stories260K story, forward logits consistent with greedy generation, and every function called
 * with bad handles (NULL, another kind, freed, garbage), bad paths and bad sizes returning its
 * error and message, never crashing. CI also runs it under ASan+UBSan (fuzz build).
 * With DATA_SHARD and RUN_DIR also the training session: create, step, checkpoint, resume, and
 * its misuse. With MIL_REFERENCE_DIR, ANETRAIN and MIL_WORKDIR also MIL programs on the ane-sim and
 * ane-fake backends (test_capi_mil.c).
 * Usage: test_capi MODEL TOKENIZER [DATA_SHARD RUN_DIR [MIL_REFERENCE_DIR ANETRAIN MIL_WORKDIR]] */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "anetrain.h"
#include "check.h"

int failures = 0;

static const char kGolden[] = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

struct collect {
  char text[4096];
  size_t len;
  int count, stop_after;
};

static int collect_piece(void* user, int32_t token, const char* piece, size_t n) {
  struct collect* c = (struct collect*)user;
  (void)token;
  if (c->len + n < sizeof c->text) {
    memcpy(c->text + c->len, piece, n);
    c->len += n;
    c->text[c->len] = 0;
  }
  ++c->count;
  return c->stop_after > 0 && c->count >= c->stop_after;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL TOKENIZER\n", argv[0]);
    return 2;
  }
  const char *model_path = argv[1], *tok_path = argv[2];
  anetrain_model *model = NULL, *junk_model = NULL;
  anetrain_tokenizer* tok = NULL;
  anetrain_model_info info;

  CHECK(anetrain_api_version() == ANETRAIN_API_VERSION, "the library's API version is the header's");
  CHECK(strlen(anetrain_version()) > 0, "a version string");

  /* ---- bad paths and arguments ---- */
  CHECK(anetrain_model_load("/nonexistent/model.bin", NULL, &junk_model) == ANETRAIN_ERR_INPUT &&
            strstr(anetrain_last_error(), "/nonexistent/model.bin") && junk_model == NULL,
        "a missing model file: input error naming the file, *out stays NULL");
  CHECK(anetrain_model_load(tok_path, NULL, &junk_model) == ANETRAIN_ERR_INPUT && junk_model == NULL,
        "a file that is not a model: input error");
  CHECK(anetrain_model_load(NULL, NULL, &junk_model) == ANETRAIN_ERR_ARGUMENT, "NULL path: argument error");
  CHECK(anetrain_model_load(model_path, NULL, NULL) == ANETRAIN_ERR_ARGUMENT, "NULL out: argument error");
  CHECK(anetrain_model_load(model_path, "no-such-backend", &junk_model) != ANETRAIN_OK &&
            strstr(anetrain_last_error(), "no-such-backend"),
        "an unknown backend is refused by name");
  CHECK(anetrain_set_threads(-3) == ANETRAIN_ERR_ARGUMENT, "negative thread count refused");

  /* ---- load ---- */
  CHECK(anetrain_model_load(model_path, NULL, &model) == ANETRAIN_OK && model, "load stories260K");
  CHECK(anetrain_model_get_info(model, &info) == ANETRAIN_OK && info.vocab_size == 512 && info.dim == 64 &&
            info.n_layers == 5 && strcmp(info.arch, "llama") == 0 && strcmp(info.kind, "llama2c") == 0,
        "model info: llama, dim 64, 5 layers, vocabulary 512, from llama2.c");
  CHECK(anetrain_tokenizer_load("/nonexistent/tok.bin", model, &tok) == ANETRAIN_ERR_INPUT && tok == NULL,
        "a missing tokenizer file: input error");
  CHECK(anetrain_tokenizer_load(NULL, NULL, &tok) == ANETRAIN_ERR_ARGUMENT, "no tokenizer path and no model: argument error");
  CHECK(anetrain_tokenizer_load(tok_path, model, &tok) == ANETRAIN_OK && tok, "load tok512.bin");

  /* ---- bad handles ---- */
  {
    long long garbage[16] = {0x1234, -1, 42};
    CHECK(anetrain_model_get_info(NULL, &info) == ANETRAIN_ERR_HANDLE, "NULL model handle");
    CHECK(anetrain_model_get_info((anetrain_model*)tok, &info) == ANETRAIN_ERR_HANDLE, "a tokenizer passed as a model");
    CHECK(anetrain_model_get_info((anetrain_model*)garbage, &info) == ANETRAIN_ERR_HANDLE, "a pointer to garbage");
    CHECK(anetrain_encode((anetrain_tokenizer*)model, "x", 1, 0, NULL, NULL) == ANETRAIN_ERR_HANDLE,
          "a model passed as a tokenizer");
    anetrain_model* doomed = NULL;
    anetrain_model_load(model_path, NULL, &doomed);
    anetrain_model_free(doomed);
    CHECK(anetrain_model_get_info(doomed, &info) == ANETRAIN_ERR_HANDLE, "a freed model handle");
    anetrain_model_free(doomed); /* a second free does nothing */
    anetrain_model_free(NULL);
    anetrain_tokenizer_free(NULL);
    CHECK(anetrain_model_get_info(model, &info) == ANETRAIN_OK, "freeing NULL or twice leaves the live handles working");
  }

  /* ---- encode / decode with sizes ---- */
  int32_t ids[512];
  size_t n = 2;
  CHECK(anetrain_encode(tok, kGolden, strlen(kGolden), 1, ids, &n) == ANETRAIN_ERR_BUFFER && n > 2,
        "encode into a 2-id buffer: buffer error with the needed count");
  const size_t needed = n;
  n = sizeof ids / sizeof ids[0];
  CHECK(anetrain_encode(tok, kGolden, strlen(kGolden), 1, ids, &n) == ANETRAIN_OK && n == needed && ids[0] == 1,
        "encode with room: BOS first, the count as announced");
  CHECK(anetrain_encode(tok, NULL, 5, 0, ids, &n) == ANETRAIN_ERR_ARGUMENT, "NULL text with a length");
  {
    size_t cap = 0, len = 0;
    char small[8], text[1024];
    cap = sizeof small;
    CHECK(anetrain_decode(tok, ids + 1, n - 1, small, &cap) == ANETRAIN_ERR_BUFFER && cap == strlen(kGolden),
          "decode into 8 bytes: buffer error with the needed length");
    len = sizeof text;
    CHECK(anetrain_decode(tok, ids + 1, n - 1, text, &len) == ANETRAIN_OK && strcmp(text, kGolden) == 0 &&
              len == strlen(kGolden),
          "decode(encode(text)) == text");
    int32_t bad[2] = {5, 100000};
    len = sizeof text;
    CHECK(anetrain_decode(tok, bad, 2, text, &len) == ANETRAIN_ERR_INPUT && strstr(anetrain_last_error(), "100000"),
          "an id outside the vocabulary is refused by value");
    len = 10;
    CHECK(anetrain_decode(tok, ids, 3, NULL, &len) == ANETRAIN_ERR_ARGUMENT, "NULL text with a capacity");
  }

  /* ---- generate ---- */
  struct collect c;
  memset(&c, 0, sizeof c);
  anetrain_sampling s;
  anetrain_sampling_default(&s);
  s.temperature = 0;
  s.max_tokens = 200;
  int32_t made = 0;
  CHECK(anetrain_generate(model, tok, "Once upon a time", &s, collect_piece, &c, &made) == ANETRAIN_OK && made == c.count,
        "greedy generation runs, the count matches the callbacks");
  CHECK(strncmp(c.text, kGolden + strlen("Once upon a time"), strlen(kGolden) - strlen("Once upon a time")) == 0,
        "the golden stories260K story");
  memset(&c, 0, sizeof c);
  c.stop_after = 5;
  CHECK(anetrain_generate(model, tok, "Once upon a time", &s, collect_piece, &c, &made) == ANETRAIN_OK && made == 5,
        "a callback returning non-zero stops generation");
  s.top_p = 0;
  CHECK(anetrain_generate(model, tok, "x", &s, NULL, NULL, NULL) == ANETRAIN_ERR_ARGUMENT, "top_p 0 is refused");
  s.top_p = 0.9f;
  s.temperature = -1;
  CHECK(anetrain_generate(model, tok, "x", &s, NULL, NULL, NULL) == ANETRAIN_ERR_ARGUMENT, "negative temperature is refused");
  CHECK(anetrain_generate(model, tok, NULL, NULL, NULL, NULL, NULL) == ANETRAIN_ERR_ARGUMENT, "NULL prompt");
  CHECK(anetrain_generate(model, NULL, "x", NULL, NULL, NULL, NULL) == ANETRAIN_ERR_HANDLE, "NULL tokenizer");

  /* ---- forward ---- */
  {
    enum { T = 16 };
    static float logits[T * 512];
    double loss = -1;
    CHECK(anetrain_forward(model, ids, ids + 1, 1, T, logits, &loss) == ANETRAIN_OK && isfinite(loss) && loss > 0 &&
              loss < 6.2,
          "forward over the golden text: a finite loss below uniform (ln 512 = 6.24)");
    /* Greedy decoding picked argmax of the logits after the prompt; the forward pass must agree. */
    int32_t prompt_ids[16];
    size_t pn = 16;
    anetrain_encode(tok, "Once upon a time", 16, 1, prompt_ids, &pn);
    int best = 0;
    for (int v = 1; v < 512; ++v)
      if (logits[(pn - 1) * 512 + v] > logits[(pn - 1) * 512 + best]) best = v;
    CHECK(best == ids[pn], "forward's argmax after the prompt is greedy generation's next token");
    CHECK(anetrain_forward(model, ids, NULL, 1, T, logits, NULL) == ANETRAIN_OK, "logits without targets");
    CHECK(anetrain_forward(model, ids, NULL, 1, T, NULL, &loss) == ANETRAIN_ERR_ARGUMENT, "a loss without targets is refused");
    CHECK(anetrain_forward(model, ids, ids + 1, 0, T, NULL, NULL) == ANETRAIN_ERR_ARGUMENT, "batch 0 is refused");
    CHECK(anetrain_forward(model, ids, ids + 1, 1, -4, NULL, NULL) == ANETRAIN_ERR_ARGUMENT, "negative seq is refused");
    CHECK(anetrain_forward(model, ids, ids + 1, 1, 100000, NULL, NULL) == ANETRAIN_ERR_ARGUMENT,
          "seq beyond the context is refused");
    CHECK(anetrain_forward(model, ids, ids + 1, 2147483647, 512, NULL, NULL) == ANETRAIN_ERR_ARGUMENT,
          "an enormous batch is refused before anything is allocated");
    int32_t bad[4] = {1, 2, 700, 3};
    CHECK(anetrain_forward(model, bad, NULL, 1, 4, NULL, NULL) == ANETRAIN_ERR_INPUT && strstr(anetrain_last_error(), "700"),
          "a token outside the vocabulary is refused by value");
    CHECK(anetrain_forward(model, NULL, NULL, 1, 4, NULL, NULL) == ANETRAIN_ERR_ARGUMENT, "NULL tokens");
  }
  test_grad(model, ids, info.params);

  anetrain_tokenizer_free(tok);
  anetrain_model_free(model);
  CHECK(anetrain_model_get_info(model, &info) == ANETRAIN_ERR_HANDLE, "after free the handle is dead");
  {
    float g[4];
    CHECK(anetrain_backward(model, ids, ids + 1, 1, 2, g, 4, NULL) == ANETRAIN_ERR_HANDLE, "backward on a freed model");
  }

  /* ---- training session ---- */
  if (argc >= 5) {
    const char *shard = argv[3], *run = argv[4];
    char json[2048];
    anetrain_trainer *tr = NULL, *junk = NULL;
    int64_t step = 0, total = 0;
    double loss = 0, first = 0;
    CHECK(anetrain_trainer_create("{not json", &junk) == ANETRAIN_ERR_ARGUMENT && junk == NULL, "options that are not JSON");
    CHECK(anetrain_trainer_create("{\"model\":\"stories260k\",\"out\":\"x\",\"data\":[],\"bogus\":1}", &junk) ==
              ANETRAIN_ERR_ARGUMENT && strstr(anetrain_last_error(), "bogus"),
          "an unknown option is refused by name");
    CHECK(anetrain_trainer_create("{\"model\":\"stories260k\",\"out\":\"x\"}", &junk) == ANETRAIN_ERR_ARGUMENT,
          "options without data");
    snprintf(json, sizeof json, "{\"model\":\"stories260k\",\"out\":\"%s\",\"data\":[\"%s\"],\"seq\":\"long\"}", run, shard);
    CHECK(anetrain_trainer_create(json, &junk) == ANETRAIN_ERR_ARGUMENT, "an option of the wrong type");
    snprintf(json, sizeof json, "{\"model\":\"stories260k\",\"out\":\"%s\",\"data\":[\"%s\"],\"threads\":100000}", run, shard);
    CHECK(anetrain_trainer_create(json, &junk) == ANETRAIN_ERR_ARGUMENT && strstr(anetrain_last_error(), "threads"),
          "100000 threads is refused (libgomp would abort the host process)");
    snprintf(json, sizeof json, "{\"model\":\"stories260k\",\"out\":\"%s\",\"data\":[\"%s\"],\"beta2\":2}", run, shard);
    CHECK(anetrain_trainer_create(json, &junk) == ANETRAIN_ERR_ARGUMENT && strstr(anetrain_last_error(), "beta2"),
          "beta2 = 2 is refused by name (the CLI's ranges)");
    snprintf(json, sizeof json, "{\"model\":\"stories260k\",\"out\":\"%s\",\"data\":[\"%s\"],\"batch\":1e12}", run, shard);
    CHECK(anetrain_trainer_create(json, &junk) == ANETRAIN_ERR_ARGUMENT, "a batch of 1e12 is refused, not converted");
    snprintf(json, sizeof json, "{\"model\":\"stories260k\",\"out\":\"%s\",\"data\":[\"/nonexistent.bin\"]}", run);
    CHECK(anetrain_trainer_create(json, &junk) == ANETRAIN_ERR_INPUT && strstr(anetrain_last_error(), "/nonexistent.bin"),
          "a missing shard is an input error naming it");
    snprintf(json, sizeof json,
             "{\"model\":\"stories260k\",\"out\":\"%s\",\"data\":[\"%s\"],\"seq\":64,\"batch\":8,\"steps\":6,"
             "\"lr\":0.001,\"warmup\":2,\"val_frac\":0.1,\"eval_batches\":2,\"threads\":1}",
             run, shard);
    CHECK(anetrain_trainer_create(json, &tr) == ANETRAIN_OK && tr, "create a stories260k run");
    CHECK(anetrain_trainer_step(tr, &first, &step) == ANETRAIN_OK && step == 1 && isfinite(first), "step 1");
    for (int i = 0; i < 3; ++i) anetrain_trainer_step(tr, &loss, &step);
    CHECK(step == 4 && loss < first, "steps 2-4 lower the loss");
    double val = 0;
    CHECK(anetrain_trainer_evaluate(tr, &val) == ANETRAIN_OK && isfinite(val) && val > 0, "a validation loss");
    char small[4];
    size_t len = sizeof small;
    CHECK(anetrain_trainer_checkpoint(tr, small, &len) == ANETRAIN_ERR_BUFFER && len > sizeof small,
          "a checkpoint path into 4 bytes: buffer error, length given");
    char path[1024];
    len = sizeof path;
    CHECK(anetrain_trainer_checkpoint(tr, path, &len) == ANETRAIN_OK && strstr(path, "step-00000004"),
          "checkpoint at step 4");
    anetrain_trainer_free(tr);
    CHECK(anetrain_trainer_step(tr, &loss, &step) == ANETRAIN_ERR_HANDLE, "a freed trainer");
    CHECK(anetrain_trainer_step((anetrain_trainer*)model, &loss, &step) == ANETRAIN_ERR_HANDLE, "a model passed as a trainer");
    CHECK(anetrain_trainer_resume("/nonexistent/run", &junk) == ANETRAIN_ERR_INPUT, "resume of a missing run");
    CHECK(anetrain_trainer_resume(run, &tr) == ANETRAIN_OK && anetrain_trainer_progress(tr, &step, &total) == ANETRAIN_OK &&
              step == 4 && total == 6,
          "resume continues at step 4 of 6");
    CHECK(anetrain_trainer_resume(run, &junk) == ANETRAIN_ERR_INPUT && junk == NULL &&
              strstr(anetrain_last_error(), "in use by another trainer"),
          "a second trainer on a run in use is refused (its lock names the holder)");
    CHECK(anetrain_trainer_step(tr, NULL, NULL) == ANETRAIN_OK && anetrain_trainer_step(tr, NULL, &step) == ANETRAIN_OK &&
              step == 6,
          "steps 5 and 6");
    CHECK(anetrain_trainer_step(tr, &loss, &step) == ANETRAIN_ERR_ARGUMENT, "no step past the run's last");
    anetrain_trainer_free(tr);
    anetrain_trainer_free(tr); /* twice does nothing */
  }
  if (argc >= 8) test_mil(argv[5], argv[6], argv[7], tok_path);
  printf("%d failed\n", failures);
  return failures ? 1 : 0;
}
