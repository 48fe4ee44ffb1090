// What `convert` and `merge` share: read a model (with adapters folded in), write it in a format.
#pragma once
#include <string>

#include "model/model.h"

namespace anetrain {

struct ConvertJob {
  std::string in, out, to, dtype = "f32", tok_path;
  std::string lora;  // a PEFT adapter folder to fold into `in` first ("" = none)
  int group = 0;
};

// Writes o.in (plus o.lora) to o.out in the format o.to or o.out's extension names; 0 on success.
int run_convert(const ConvertJob& o);

// Folds a residual scale α ≠ 1 into Wo and W_down (model/residual_fold.h), saying so on stderr:
// what convert, export and merge write is read by programs that have no such setting.
void fold_residual_scale_for_export(Model& m);

}  // namespace anetrain
