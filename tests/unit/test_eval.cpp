// The evaluation module's text rules, where a mistake would silently shift every score: the
// harness's HellaSwag cleaning (Python's str.strip/replace and re.sub semantics) and the JSONL
// reader's field forms.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "core/error.h"
#include "train/eval_choices.h"

namespace anetrain {
namespace {

TEST(EvalChoices, HellaswagPreprocessFollowsTheHarness) {
  EXPECT_EQ(hellaswag_preprocess("  A man [title] Walks. "), "A man. Walks.");
  // "[…]" removed shortest-first; the space left behind is kept when nothing follows it.
  EXPECT_EQ(hellaswag_preprocess("stir it. [substeps] Then [step] serve"), "stir it. Then serve");
  EXPECT_EQ(hellaswag_preprocess("high. [substeps]"), "high. ");
  // str.replace("  ", " ") is one left-to-right pass: three spaces become two.
  EXPECT_EQ(hellaswag_preprocess("a   b"), "a  b");
  EXPECT_EQ(hellaswag_preprocess("a [x\ny] b"), "a [x\ny] b");  // "." does not cross a newline
}

TEST(EvalChoices, ReadsBothFieldForms) {
  const std::string path = ::testing::TempDir() + "/eval_choices_forms.jsonl";
  {
    std::ofstream f(path);
    f << R"({"ctx": "The cat", "endings": ["sat. [x]", "ran"], "label": 1})" << "\n\n";
    f << R"({"activity_label": "Cats", "ctx_a": "A cat [title] sits.", "ctx_b": "iT THEN", )"
      << R"("endings": [" naps  now. ", "x"], "label": "0"})" << "\n";
  }
  const std::vector<ChoiceItem> items = read_choices(path);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].line, 1);
  EXPECT_EQ(items[0].context, "The cat");
  EXPECT_EQ(items[0].endings[0], "sat. [x]");  // the plain form is taken as it is
  EXPECT_EQ(items[0].label, 1);
  EXPECT_EQ(items[1].line, 3);
  EXPECT_EQ(items[1].context, "Cats: A cat. sits. It then");
  EXPECT_EQ(items[1].endings[0], "naps now.");
  EXPECT_EQ(items[1].label, 0);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace anetrain
