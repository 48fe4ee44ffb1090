// The C API (include/anetrain.h) over the engine: models, tokenizers, generation, forward. Every
// entry point runs inside `guarded` and checks its handles against a Registry (capi/guard.h).
#include "anetrain.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>
#include <vector>

#include "capi/guard.h"
#include "capi/model_handle.h"
#include "core/error.h"
#include "core/rng.h"
#include "formats/load.h"
#include "gen/decoder.h"
#include "gen/sampler.h"
#include "gen/weight_form.h"
#include "contract/registry.h"
#include "model/transformer.h"
#include "model/workspace.h"
#include "telemetry/jsonl.h"
#include "tokenizer/tokenizer.h"

struct anetrain_tokenizer {
  std::unique_ptr<anetrain::Tokenizer> tok;
};

namespace anetrain::capi {
thread_local std::string t_error;
Registry<anetrain_model> g_models;
}  // namespace anetrain::capi

namespace {

using namespace anetrain;
using namespace anetrain::capi;

Registry<anetrain_tokenizer> g_tokenizers;

void copy_name(char (&dst)[16], const std::string& src) {
  std::memset(dst, 0, sizeof dst);
  std::memcpy(dst, src.data(), std::min(src.size(), sizeof dst - 1));
}

}  // namespace

extern "C" {

int anetrain_api_version(void) { return ANETRAIN_API_VERSION; }

const char* anetrain_version(void) {
  static const std::string v = "0.1.0 (" + git_commit() + ")";
  return v.c_str();
}

const char* anetrain_last_error(void) { return t_error.c_str(); }

const char* anetrain_status_name(anetrain_status s) {
  switch (s) {
    case ANETRAIN_OK: return "ok";
    case ANETRAIN_ERR_ARGUMENT: return "bad argument";
    case ANETRAIN_ERR_HANDLE: return "bad handle";
    case ANETRAIN_ERR_INPUT: return "bad input";
    case ANETRAIN_ERR_BUFFER: return "buffer too small";
    case ANETRAIN_ERR_INTERNAL: return "internal error";
    case ANETRAIN_ERR_UNSUPPORTED: return "not supported in this build";
  }
  return "unknown status";
}

anetrain_status anetrain_set_threads(int threads) {
  return guarded("anetrain_set_threads", [&] {
    if (threads < 0 || threads > 4096) refuse(ANETRAIN_ERR_ARGUMENT, "threads must be 0 (all cores) to 4096");
    set_library_threads(threads);
  });
}

anetrain_status anetrain_model_load(const char* path, const char* backend, anetrain_model** out) {
  return guarded("anetrain_model_load", [&] {
    need(out, "out");
    *out = nullptr;
    need(path, "path");
    auto m = std::make_unique<anetrain_model>();
    m->backend = make_backend(backend ? backend : "cpu");
    m->loaded = load_model(path);
    m->path = path;
    *out = g_models.add(std::move(m));
  });
}

void anetrain_model_free(anetrain_model* model) { g_models.take(model); }

anetrain_status anetrain_model_get_info(const anetrain_model* model, anetrain_model_info* out) {
  return guarded("anetrain_model_get_info", [&] {
    const auto m = g_models.get(model);
    need(out, "out");
    const ModelConfig& c = m->loaded.model->cfg;
    *out = anetrain_model_info{};
    out->vocab_size = c.vocab_size;
    out->dim = c.dim;
    out->n_layers = c.n_layers;
    out->n_heads = c.n_heads;
    out->n_kv_heads = c.n_kv_heads;
    out->hidden_dim = c.hidden_dim;
    out->max_seq_len = c.max_seq_len;
    out->params = int64_t(m->loaded.model->table.total());
    copy_name(out->arch, c.qk_norm ? "qwen3" : "llama");
    copy_name(out->kind, m->loaded.kind);
  });
}

anetrain_status anetrain_tokenizer_load(const char* path, const anetrain_model* model, anetrain_tokenizer** out) {
  return guarded("anetrain_tokenizer_load", [&] {
    need(out, "out");
    *out = nullptr;
    if (!path && !model) refuse(ANETRAIN_ERR_ARGUMENT, "give a tokenizer path, or a model to find it next to");
    const std::shared_ptr<anetrain_model> m = model ? g_models.get(model) : nullptr;
    const std::string file = find_tokenizer(m ? m->path : std::string(), path ? path : "");
    auto t = std::make_unique<anetrain_tokenizer>();
    t->tok = load_tokenizer(file, m ? m->loaded.model->cfg.vocab_size : 0);
    if (m && t->tok->vocab_size() > m->loaded.model->cfg.vocab_size)
      refuse(ANETRAIN_ERR_INPUT, file + ": " + std::to_string(t->tok->vocab_size()) + " tokens, but the model has only " +
                                     std::to_string(m->loaded.model->cfg.vocab_size));
    *out = g_tokenizers.add(std::move(t));
  });
}

void anetrain_tokenizer_free(anetrain_tokenizer* tok) { g_tokenizers.take(tok); }

anetrain_status anetrain_tokenizer_special(const anetrain_tokenizer* tok, int32_t* bos, int32_t* eos, int32_t* vocab) {
  return guarded("anetrain_tokenizer_special", [&] {
    const auto held = g_tokenizers.get(tok);
    const Tokenizer& t = *held->tok;
    if (bos) *bos = t.bos_id();
    if (eos) *eos = t.eos_id();
    if (vocab) *vocab = t.vocab_size();
  });
}

anetrain_status anetrain_encode(const anetrain_tokenizer* tok, const char* text, size_t text_len, int add_bos,
                                int32_t* ids, size_t* n_ids) {
  return guarded("anetrain_encode", [&] {
    const auto held = g_tokenizers.get(tok);
    const Tokenizer& t = *held->tok;
    need(n_ids, "n_ids");
    if (!text && text_len) refuse(ANETRAIN_ERR_ARGUMENT, "text is NULL");
    const size_t capacity = output_capacity(ids, "ids", n_ids);
    const auto v = t.encode(std::string_view(text ? text : "", text_len), add_bos && t.bos_id() >= 0, false);
    *n_ids = v.size();
    if (v.size() > capacity) refuse(ANETRAIN_ERR_BUFFER, "ids holds " + std::to_string(capacity) + ", the text needs " +
                                                             std::to_string(v.size()));
    std::copy(v.begin(), v.end(), ids);
  });
}

anetrain_status anetrain_decode(const anetrain_tokenizer* tok, const int32_t* ids, size_t n_ids, char* text,
                                size_t* len) {
  return guarded("anetrain_decode", [&] {
    const auto held = g_tokenizers.get(tok);
    const Tokenizer& t = *held->tok;
    need(len, "len");
    if (!ids && n_ids) refuse(ANETRAIN_ERR_ARGUMENT, "ids is NULL");
    const size_t capacity = output_capacity(text, "text", len);
    for (size_t i = 0; i < n_ids; ++i)
      if (ids[i] < 0 || ids[i] >= t.vocab_size())
        refuse(ANETRAIN_ERR_INPUT, "id " + std::to_string(ids[i]) + " at " + std::to_string(i) + " is outside the vocabulary (" +
                                       std::to_string(t.vocab_size()) + ")");
    const std::string s = t.decode(std::vector<int32_t>(ids, ids + n_ids));
    *len = s.size();
    if (s.size() + 1 > capacity)
      refuse(ANETRAIN_ERR_BUFFER, "text holds " + std::to_string(capacity) + " bytes, " + std::to_string(s.size() + 1) +
                                      " needed with the NUL");
    std::memcpy(text, s.data(), s.size());
    text[s.size()] = '\0';
  });
}

void anetrain_sampling_default(anetrain_sampling* s) {
  if (!s) return;
  *s = anetrain_sampling{0.8f, 0.9f, 0, 0, 0, 1};
}

anetrain_status anetrain_generate(anetrain_model* model, const anetrain_tokenizer* tok, const char* prompt,
                                  const anetrain_sampling* sampling, anetrain_token_callback callback, void* user,
                                  int32_t* n_generated) {
  return guarded("anetrain_generate", [&] {
    const auto m = g_models.get(model);
    const auto held = g_tokenizers.get(tok);
    const Tokenizer& t = *held->tok;
    need(prompt, "prompt");
    if (n_generated) *n_generated = 0;
    anetrain_sampling sp;
    anetrain_sampling_default(&sp);
    if (sampling) sp = *sampling;
    if (!(sp.temperature >= 0)) refuse(ANETRAIN_ERR_ARGUMENT, "temperature must be ≥ 0");
    if (!(sp.top_p > 0 && sp.top_p <= 1)) refuse(ANETRAIN_ERR_ARGUMENT, "top_p must be in (0, 1]");
    if (sp.top_k < 0 || sp.max_tokens < 0) refuse(ANETRAIN_ERR_ARGUMENT, "top_k and max_tokens must be ≥ 0");
    const Model& model_ref = *m->loaded.model;
    const int V = model_ref.cfg.vocab_size, ctx = model_ref.cfg.max_seq_len;
    const std::vector<int32_t> ids = t.encode(prompt, t.bos_id() >= 0, false);
    if (ids.empty()) refuse(ANETRAIN_ERR_ARGUMENT, "the prompt encodes to no tokens and the tokenizer has no BOS");
    if (int(ids.size()) >= ctx)
      refuse(ANETRAIN_ERR_ARGUMENT, "the prompt has " + std::to_string(ids.size()) + " tokens; the context is " +
                                        std::to_string(ctx));
    const int room = ctx - int(ids.size());
    const int budget = sp.max_tokens > 0 ? std::min(sp.max_tokens, room) : room;
    // The weights in the form the backend decodes (as `anetrain generate` chooses): the model, or
    // its fp32 matrices viewed as packed ones. A model with adapters (a LoRA session's) decodes
    // through the stages, which apply them without merging the weights it trains.
    const bool packs = decodes_packed(*m->backend) && model_ref.cfg.lora.rank == 0;
    const std::unique_ptr<PackedModel> packed = packs ? view_as_packed(model_ref) : nullptr;
    const int max_ctx = int(ids.size()) + budget;
    const auto dec = packed ? std::make_unique<Decoder>(*m->backend, *packed, max_ctx)
                            : std::make_unique<Decoder>(*m->backend, model_ref, max_ctx);
    const float* logits = dec->feed(ids.data(), int(ids.size()));
    Rng rng(sp.seed);
    const SamplingParams params{sp.temperature, sp.top_p, sp.top_k};
    std::vector<float> scratch;
    int32_t prev = ids.back();
    for (int made = 0; made < budget; ++made) {
      const int32_t next = sample_token(logits, V, params, rng, scratch);
      if (sp.stop_at_eos && (next == t.eos_id() || (next == t.bos_id() && made > 0))) break;
      const std::string piece = t.decode_step(prev, next);
      if (n_generated) *n_generated = made + 1;
      if (callback) {
        const HostCodeSignals host;  // the host's Ctrl-C may interrupt its own callback
        if (callback(user, next, piece.data(), piece.size()) != 0) break;
      }
      prev = next;
      if (made + 1 < budget) logits = dec->feed(next);
    }
  });
}

anetrain_status anetrain_forward(anetrain_model* model, const int32_t* tokens, const int32_t* targets, int32_t batch,
                                 int32_t seq, float* logits, double* loss) {
  return guarded("anetrain_forward", [&] {
    const auto m = g_models.get(model);
    need(tokens, "tokens");
    Model& mm = *m->loaded.model;
    const int V = mm.cfg.vocab_size;
    if (batch < 1 || seq < 1 || seq > mm.cfg.max_seq_len || int64_t(batch) * seq > (int64_t(1) << 24))
      refuse(ANETRAIN_ERR_ARGUMENT, "batch " + std::to_string(batch) + " × seq " + std::to_string(seq) +
                                        " is out of range (seq ≤ " + std::to_string(mm.cfg.max_seq_len) + ")");
    if (loss && !targets) refuse(ANETRAIN_ERR_ARGUMENT, "the loss needs targets");
    const size_t N = size_t(batch) * size_t(seq);
    for (size_t i = 0; i < N; ++i) {
      if (tokens[i] < 0 || tokens[i] >= V)
        refuse(ANETRAIN_ERR_INPUT, "token " + std::to_string(tokens[i]) + " at " + std::to_string(i) +
                                       " is outside the vocabulary (" + std::to_string(V) + ")");
      if (targets && (targets[i] < 0 || targets[i] >= V))
        refuse(ANETRAIN_ERR_INPUT, "target " + std::to_string(targets[i]) + " at " + std::to_string(i) +
                                       " is outside the vocabulary (" + std::to_string(V) + ")");
    }
    Workspace ws(mm.cfg, batch, seq);
    std::copy(tokens, tokens + N, ws.inputs.begin());
    if (targets) std::copy(targets, targets + N, ws.targets.begin());
    else std::fill(ws.targets.begin(), ws.targets.end(), 0);  // the loss is not asked for
    const double l = forward(*m->backend, mm, ws);
    if (loss) *loss = l;
    if (logits) std::copy(ws.logits, ws.logits + N * size_t(V), logits);
  });
}

}  // extern "C"
