// Multiple-choice scoring in HellaSwag's JSONL form, as lm-evaluation-harness scores it: each
// ending's log-likelihood given the context is the sum over its tokens; `acc` takes the ending
// with the largest sum, `acc_norm` the largest sum divided by the ending's length in characters
// (Unicode code points, the delimiting space not counted).
// One JSON object per line: "endings" (strings), "label" (index, a number or a numeric string),
// and either "activity_label" + "ctx_a" + "ctx_b" — HellaSwag's raw fields, preprocessed as the
// harness does — or "ctx" used as it is. Blank lines are skipped.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "contract/backend.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/eval_text.h"

namespace anetrain {

struct ChoiceItem {
  int line = 0;  // 1-based, for messages
  std::string context;
  std::vector<std::string> endings;
  int label = 0;
};

// Throws "FILE:LINE: …" for a line that is not such an object.
std::vector<ChoiceItem> read_choices(const std::string& path);

// The harness's cleaning of HellaSwag text: trimmed, " [title]" → ". ", other "[…]" removed,
// double spaces made single.
std::string hellaswag_preprocess(const std::string& text);

struct ChoiceScore {
  int line = 0, label = 0, pred = 0, pred_norm = 0;
  std::vector<double> logprob;  // per ending: the sum of its tokens' log-probabilities
  std::vector<int> chars, tokens;
};

struct ChoiceReport {
  double acc = 0, acc_norm = 0;
  std::vector<ChoiceScore> items;
};

// An ending's tokens are those of encode(context + " " + ending) past the count of
// encode(context without its trailing spaces), as the harness splits them; both with BOS in front
// where the tokenizer has one.
ChoiceReport score_choices(Backend& be, Model& m, const Tokenizer& tok, const std::vector<ChoiceItem>& items,
                           const std::string& path, int rows = 0, const EvalProgress& progress = {});

}  // namespace anetrain
