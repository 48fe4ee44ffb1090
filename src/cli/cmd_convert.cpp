// `anetrain convert IN OUT [--to llama2c-v0|llama2c-v1|llama2c-v2|hf|gguf] [--dtype f32|f16|bf16|q8_0]
// [--group G] [-z TOK]`: any MODEL anetrain reads, written as a llama2.c .bin, a Hugging Face
// folder or a GGUF. q8_0 writes llama2.c version 2 (runq.c's file; a .bin with --dtype q8_0) or a
// GGUF with Q8_0 matrices; a file already in Q8_0 keeps its values when written as version 2. The
// tokenizer rides along where the target holds one: GGUF embeds it; an HF folder gets a llama2.c
// tokenizer.bin for SentencePiece vocabularies (the only tokenizer file this build writes), or the
// file itself when it is -z's or the copy a run keeps of the tokenizer it was trained with.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/convert_job.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/gguf.h"
#include "formats/gguf_vocab.h"
#include "formats/hf.h"
#include "formats/llama2c.h"
#include "formats/load.h"
#include "formats/peft.h"
#include "model/lora.h"
#include "model/residual_fold.h"
#include "tokenizer/tokenizer.h"

namespace anetrain {

namespace {
namespace fs = std::filesystem;

std::string target_format(const std::string& out, const std::string& to, bool dtype_q8) {
  if (!to.empty()) return to;
  const std::string ext = fs::path(out).extension().string();
  if (ext == ".gguf") return "gguf";
  if (ext == ".bin") return dtype_q8 ? "llama2c-v2" : "llama2c-v0";
  std::error_code ec;
  if (!out.empty() && (fs::is_directory(out, ec) || out.back() == '/' || ext.empty())) return "hf";
  fail("cannot tell the output format from '" + out + "'; pass --to llama2c-v0, llama2c-v1, llama2c-v2, hf or gguf");
}

// The tokenizer to carry: -z wins; else one stored in the input (GGUF metadata, or a
// tokenizer.bin / tokenizer.json inside an HF folder). Empty when there is none.
GgufTokenizer source_tokenizer(const std::string& in, const std::string& kind, const std::string& z, int vocab) {
  if (!z.empty()) return gguf_tokenizer_from_file(z, vocab);
  if (kind == "gguf") return gguf_tokenizer(GgufReader(in));
  if (kind == "hf") {
    for (const char* name : {"tokenizer.bin", "tokenizer.json"}) {
      const fs::path p = fs::path(in) / name;
      if (fs::is_regular_file(p)) {
        try {
          return gguf_tokenizer_from_file(p.string(), vocab);
        } catch (const Error& e) {
          std::fprintf(stderr, "note: %s not carried over: %s\n", p.c_str(), e.what());
        }
      }
    }
  }
  return {};
}
}  // namespace

void fold_residual_scale_for_export(Model& m) {
  if (m.cfg.residual_scale == 1.0) return;
  std::fprintf(stderr, "folding the residual scale %g into every layer's Wo and W_down (readers of the output have no such "
                       "setting)\n", m.cfg.residual_scale);
  fold_residual_scale(m);
}

int run_convert(const ConvertJob& o) {
  // The source with any adapters folded in: an adapter run's checkpoint, or --lora's folder over it.
  auto load_source = [&o] {
    LoadedModel lm = load_model(o.in);
    if (!o.lora.empty()) load_peft_adapter(*lm.model, o.lora);
    if (lm.model->cfg.lora.rank > 0) {
      std::fprintf(stderr, "merging rank-%d adapters (%s) into the weights\n", lm.model->cfg.lora.rank,
                   o.lora.empty() ? o.in.c_str() : o.lora.c_str());
      merge_adapters(*lm.model);
    }
    fold_residual_scale_for_export(*lm.model);
    return lm;
  };
  const std::string fmt = target_format(o.out, o.to, o.dtype == "q8_0");
  const bool llama2c = fmt.rfind("llama2c", 0) == 0;
  if (fmt == "llama2c-v2" && o.dtype != "q8_0") fail("llama2.c version 2 is Q8_0; pass --dtype q8_0");
  if (llama2c && fmt != "llama2c-v2" && o.dtype != "f32")
    fail("llama2.c versions 0 and 1 are fp32 only; drop --dtype " + o.dtype + " (Q8_0: --dtype q8_0 --to llama2c-v2)");
  if (fmt == "hf" && o.dtype == "q8_0") fail("a Hugging Face folder holds f32, f16 or bf16; Q8_0 goes to gguf or llama2c-v2");
  if (o.group != 0 && fmt != "llama2c-v2") fail("--group applies to llama2c-v2 (GGUF's Q8_0 blocks are 32)");
  if (llama2c && !o.tok_path.empty())
    fail("a llama2.c .bin holds no tokenizer, so -z has nothing to do (llama2.c's run takes the tokenizer.bin itself, with -z)");
  std::error_code ec;
  if (fmt == "hf" && fs::exists(o.out, ec) && !fs::is_directory(o.out, ec))
    fail(o.out + ": exists and is not a folder (an HF model is a folder)");
  if (fmt != "hf" && fs::is_directory(o.out, ec)) fail(o.out + ": is a folder; give a file name");
  std::vector<std::string> inputs = model_input_files(o.in), outputs = {o.out};
  if (!o.lora.empty())
    for (const std::string& f : model_input_files(o.lora)) inputs.push_back(f);
  if (!o.tok_path.empty()) inputs.push_back(o.tok_path);
  if (fmt == "hf") {
    outputs.clear();
    for (const char* name : {"model.safetensors", "config.json", "tokenizer.bin", "tokenizer.json", "tokenizer_config.json"})
      outputs.push_back((fs::path(o.out) / name).string());
  }
  refuse_output_over_input(outputs, inputs);

  if (fmt == "llama2c-v2") {
    std::string kind;
    std::unique_ptr<PackedModel> pm;
    const ModelConfig source = load_model_config(o.in);
    if (source.rope_style != RopeStyle::interleaved || source.residual_scale != 1.0 || !o.lora.empty()) {
      // runq.c rotates interleaved pairs: permute the q/k rows (as v0/v1 do), then quantize.
      LoadedModel lm = load_source();
      kind = lm.kind;
      if (lm.model->cfg.rope_style != RopeStyle::interleaved) permute_rope_to_interleaved(*lm.model);
      pm = pack_model(std::move(lm.model), WeightFormat::q8_0, o.group);
    } else {
      pm = load_packed_model(o.in, WeightFormat::q8_0, o.group, &kind);
    }
    if (o.group != 0 && pm->group != o.group)
      fail(o.in + " is already Q8_0 in groups of " + std::to_string(pm->group) + "; its values are kept, so --group " +
           std::to_string(o.group) + " cannot apply");
    save_llama2c_v2(*pm, o.out);
    std::fprintf(stderr, "wrote %s (llama2c-v2, q8_0 in groups of %d, %zu parameters) from %s (%s)\n", o.out.c_str(),
                 pm->group, pm->table.total(), o.in.c_str(), kind.c_str());
    return 0;
  }
  LoadedModel lm = load_source();
  const Model& m = *lm.model;
  // Without -z, a run (or a checkpoint in one) brings the tokenizer it was trained with.
  const std::string run_tok = o.tok_path.empty() && !llama2c ? run_tokenizer(o.in) : std::string();
  const std::string tok_file = o.tok_path.empty() ? run_tok : o.tok_path;
  // An HF folder takes a -z file as it is (any tokenizer.json style); everything else goes
  // through the GGUF tokenizer struct.
  const bool copy_z = fmt == "hf" && !tok_file.empty();
  GgufTokenizer tok;
  try {
    if (!copy_z) tok = source_tokenizer(o.in, lm.kind, tok_file, m.cfg.vocab_size);
  } catch (const Error& e) {
    if (run_tok.empty()) throw;  // -z's file: the user asked for it
    std::fprintf(stderr, "note: the run's tokenizer %s is not carried over: %s\n", run_tok.c_str(), e.what());
  }
  const DType t = o.dtype == "f16" ? DType::f16 : o.dtype == "bf16" ? DType::bf16 : DType::f32;
  const GgmlType gt = o.dtype == "q8_0" ? GgmlType::q8_0 : o.dtype == "f16" ? GgmlType::f16
                      : o.dtype == "bf16" ? GgmlType::bf16 : GgmlType::f32;
  std::string carried = "no tokenizer";
  if (fmt == "gguf") {
    save_gguf(m, o.out, gt, tok.empty() ? nullptr : &tok);
    if (!tok.empty()) carried = "tokenizer \"" + tok.model + "\", " + std::to_string(tok.tokens.size()) + " tokens";
  } else if (fmt == "hf") {
    // Refuse a broken or oversized tokenizer before writing anything.
    if (copy_z && load_tokenizer(tok_file, 0)->vocab_size() > m.cfg.vocab_size)
      fail(tok_file + ": tokenizer has more tokens than the model has embedding rows");
    save_hf_folder(m, o.out, t);
    if (copy_z) {
      // tokenizer_config.json goes along with a tokenizer.json (its EOS, BOS rule and chat
      // template: what transformers and llama.cpp's converter read from a model folder).
      carried = run_tok.empty() ? "copied from " + tok_file + ":" : "the run's tokenizer:";
      for (const std::string& name : copy_tokenizer_files(tok_file, o.out)) carried += " " + name;
    } else if (!tok.empty() && tok.model == "llama" && tok.scores.size() == tok.tokens.size()) {
      write_gguf_tokenizer_as_llama2c(tok, (fs::path(o.out) / "tokenizer.bin").string());
      carried = "tokenizer.bin, " + std::to_string(tok.tokens.size()) + " tokens";
    } else if (!tok.empty()) {
      std::fprintf(stderr, "note: the \"%s\" tokenizer is not carried over (this build writes only llama2.c tokenizer.bin)\n",
                   tok.model.c_str());
    }
  } else {
    save_llama2c(m, o.out, fmt == "llama2c-v1" ? 1 : 0);
    if (!tok.empty()) std::fprintf(stderr, "note: a llama2.c .bin holds no tokenizer; it was not written\n");
  }
  std::fprintf(stderr, "wrote %s (%s, %s, %zu parameters, %s) from %s (%s)\n", o.out.c_str(), fmt.c_str(),
               llama2c ? "f32" : o.dtype.c_str(), m.table.total(), carried.c_str(), o.in.c_str(), lm.kind.c_str());
  return 0;
}

void add_convert_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("convert", "Convert a model between llama2.c .bin, Hugging Face folders and GGUF");
  const auto o = std::make_shared<ConvertJob>();
  cmd->add_option("in", o->in, "Model to read: llama2.c .bin (v0/v1/v2), .gguf, HF folder, checkpoint or preset")->required();
  cmd->add_option("out", o->out, "Where to write: *.bin → llama2.c v0, *.gguf → GGUF, a folder → Hugging Face")->required();
  cmd->add_option("--to", o->to, "Output format, overriding OUT's extension")
      ->check(CLI::IsMember({"llama2c-v0", "llama2c-v1", "llama2c-v2", "hf", "gguf"}));
  cmd->add_option("--dtype", o->dtype,
                  "Matrix dtype: f32/f16/bf16 for hf and gguf, q8_0 for gguf and llama2c-v2 (llama2.c v0/v1 are f32)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}))
      ->capture_default_str();
  cmd->add_option("--group", o->group, "Q8_0 group size for llama2c-v2 (default 64 where it divides the widths, else 32)");
  cmd->add_option("-z,--tokenizer", o->tok_path, "tokenizer.bin or byte-level tokenizer.json to store with the model");
  cmd->callback([&run, o] { run = [o] { return run_convert(*o); }; });
}

}  // namespace anetrain
