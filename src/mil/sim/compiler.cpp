#include "mil/sim/compiler.h"

#include <functional>
#include <map>

#include "mil/blob.h"
#include "mil/infer.h"
#include "mil/parser.h"

namespace anetrain::sim {
using mil::mil_fail;

using mil::Literal;
using mil::Op;
using mil::Type;

struct SimModel::Step {
  std::function<Tensor(const std::vector<Tensor>& env)> run;
  int out = -1;
  std::vector<int> release;  // slots whose last reader is this step
};

SimModel::~SimModel() = default;

Compiler& Compiler::process() {
  static Compiler compiler;
  return compiler;
}

std::unique_ptr<SimModel> Compiler::compile(const mil::Program& p, const std::string& model_dir) {
  return compile(p, [&](const Literal& l) { return mil::read_blob_values(l, model_dir); });
}

std::unique_ptr<SimModel> Compiler::compile(const mil::Program& p, const mil::BlobFiles& files) {
  return compile(p, [&](const Literal& l) { return mil::read_blob_values(l, files); });
}

std::unique_ptr<SimModel> Compiler::compile(const mil::Program& p, const BlobReader& read_blob) {
  mil::check_program(p, "program");
  for (const LimitViolation& v : check_ane_limits(p))
    if (v.when == When::compile) mil_fail("ANE compile failed: " + v.message + " [" + v.source + "]");
  if (compiles_ >= budget_)
    mil_fail("ANE compile failed: this process already compiled and loaded " + std::to_string(compiles_) +
             " programs, the most the ANE compiler allows before it fails (it leaks resources per compile; the seed "
             "restarts the process with exec() or compiles each distinct program once) [seed-system 8.6: ~119 "
             "compiles per process]");
  ++compiles_;
  std::unique_ptr<SimModel> m(new SimModel());
  m->program_ = p;
  for (const LimitViolation& v : check_ane_limits(p))
    if (v.when == When::warning) m->warnings_.push_back(v.message);
  m->plan(read_blob);
  return m;
}

namespace {

Tensor from_literal(const Literal& l, const BlobReader& read_blob) {
  std::vector<double> v = l.kind == Literal::Kind::blobfile ? read_blob(l) : l.values;
  Tensor t{l.type, std::make_shared<std::vector<float>>(v.begin(), v.end())};
  if (t.numel() == 0) t.data->resize(1, 0.0f);  // strings: a placeholder; their value is read from the literal
  round_result(t);
  return t;
}

std::vector<float> floats_of(const Tensor& t) { return std::vector<float>(t.data->begin(), t.data->end()); }

}  // namespace

void SimModel::plan(const BlobReader& model_dir) {
  std::map<std::string, int> slot;
  std::map<std::string, mil::ValueInfo> info;
  for (const auto& [name, type] : program_.inputs) {
    slot[name] = int(slot.size());
    input_slots_.push_back(slot[name]);
    info[name] = {type, nullptr};
  }
  constants_.resize(slot.size());
  std::vector<int> last_use;
  for (const Op& op : program_.ops) {
    int out = int(slot.size());
    slot[op.out] = out;
    constants_.resize(slot.size());
    info[op.out] = {op.type, op.kind == "const" ? &op.attr("val")->value : nullptr};
    if (op.kind == "const") {
      constants_[out] = from_literal(op.attr("val")->value, model_dir);
      continue;
    }
    if (op.kind == "constexpr_affine_dequantize") {
      Tensor q = from_literal(op.attr("quantized_data")->value, model_dir);
      int axis = mil::normalize_axis(op.attr("axis")->value.as_int(), q.type.rank(), "axis");
      constants_[out] = dequantize(q, floats_of(from_literal(op.attr("scale")->value, model_dir)),
                                   floats_of(from_literal(op.attr("zero_point")->value, model_dir)), axis, op.type);
      continue;
    }
    auto in = [&](const char* name) { return slot.at(op.arg(name)->vars.at(0)); };
    auto literal = [&](const char* name) -> const Literal& {
      const mil::Arg* a = op.arg(name);
      return a->is_literal ? a->literal : *info.at(a->vars.at(0)).constant;
    };
    auto cval = [&](const char* name) { return floats_of(from_literal(literal(name), model_dir)); };
    Step step;
    step.out = out;
    const Type t = op.type;
    std::vector<int> reads;
    for (const mil::Arg& a : op.args)
      if (!a.is_literal)
        for (const std::string& v : a.vars) reads.push_back(slot.at(v));
    const std::string& k = op.kind;
    if (k == "add" || k == "sub" || k == "mul" || k == "pow") {
      Binary b = k == "add" ? Binary::add : k == "sub" ? Binary::sub : k == "mul" ? Binary::mul : Binary::pow;
      int x = in("x"), y = in("y");
      step.run = [=](const std::vector<Tensor>& e) { return binary(b, e[x], e[y], t); };
    } else if (k == "matmul") {
      int x = in("x"), y = in("y");
      bool tx = op.arg("transpose_x") && literal("transpose_x").as_bool();
      bool ty = op.arg("transpose_y") && literal("transpose_y").as_bool();
      step.run = [=](const std::vector<Tensor>& e) { return matmul(e[x], e[y], tx, ty, t); };
    } else if (k == "conv") {
      ConvParams p;
      if (op.arg("strides")) p.stride[0] = int64_t(cval("strides")[0]), p.stride[1] = int64_t(cval("strides")[1]);
      if (op.arg("dilations")) p.dilation[0] = int64_t(cval("dilations")[0]), p.dilation[1] = int64_t(cval("dilations")[1]);
      if (op.arg("groups")) p.groups = literal("groups").as_int();
      if (op.arg("pad") && op.arg("pad_type") && literal("pad_type").str == "custom")
        for (int i = 0; i < 4; ++i) p.pad[i] = int64_t(cval("pad")[i]);
      int x = in("x"), w = in("weight"), bias = op.arg("bias") ? in("bias") : -1;
      step.run = [=](const std::vector<Tensor>& e) { return conv(e[x], e[w], bias >= 0 ? &e[bias] : nullptr, p, t); };
    } else if (k == "reshape") {
      int x = in("x");
      step.run = [=](const std::vector<Tensor>& e) { return reshape(e[x], t); };
    } else if (k == "transpose") {
      int x = in("x");
      std::vector<int64_t> perm = literal("perm").as_ints();
      step.run = [=](const std::vector<Tensor>& e) { return transpose(e[x], perm, t); };
    } else if (k == "slice_by_size") {
      int x = in("x");
      std::vector<int64_t> begin = literal("begin").as_ints();
      step.run = [=](const std::vector<Tensor>& e) { return slice(e[x], begin, t); };
    } else if (k == "concat") {
      std::vector<int> parts;
      for (const std::string& v : op.arg("values")->vars) parts.push_back(slot.at(v));
      int axis = mil::normalize_axis(literal("axis").as_int(), t.rank(), "axis");
      step.run = [=](const std::vector<Tensor>& e) {
        std::vector<const Tensor*> v;
        for (int s : parts) v.push_back(&e[s]);
        return concat(v, axis, t);
      };
    } else if (k == "reduce_sum") {
      int x = in("x");
      const Type& xt = info.at(op.arg("x")->vars[0]).type;
      std::vector<bool> reduced(size_t(xt.rank()), !op.arg("axes"));
      if (op.arg("axes"))
        for (int64_t a : literal("axes").as_ints()) reduced[size_t(mil::normalize_axis(a, xt.rank(), "axis"))] = true;
      step.run = [=](const std::vector<Tensor>& e) { return reduce_sum(e[x], reduced, t); };
    } else if (k == "softmax") {
      int x = in("x");
      int axis = mil::normalize_axis(op.arg("axis") ? literal("axis").as_int() : -1, t.rank(), "axis");
      step.run = [=](const std::vector<Tensor>& e) { return softmax(e[x], axis); };
    } else if (k == "sigmoid") {
      int x = in("x");
      step.run = [=](const std::vector<Tensor>& e) { return sigmoid(e[x]); };
    } else if (k == "cast") {
      int x = in("x");
      step.run = [=](const std::vector<Tensor>& e) { return cast(e[x], t); };
    } else if (k == "quantize" || k == "dequantize") {
      int x = in("input");
      std::vector<float> scale = cval("scale"), zp = op.arg("zero_point") ? cval("zero_point") : std::vector<float>{};
      int axis = op.arg("axis") ? mil::normalize_axis(literal("axis").as_int(), t.rank(), "axis") : 0;
      bool q = k == "quantize";
      step.run = [=](const std::vector<Tensor>& e) {
        return q ? quantize(e[x], scale, zp, axis, t) : dequantize(e[x], scale, zp, axis, t);
      };
    } else if (k == "scaled_dot_product_attention") {
      int q = in("query"), key = in("key"), v = in("value");
      step.run = [=](const std::vector<Tensor>& e) { return attention(e[q], e[key], e[v], t); };
    } else {
      mil_fail("ane-sim: no implementation of op '" + k + "'");
    }
    last_use.resize(slot.size(), -1);
    for (int r : reads) last_use[size_t(r)] = int(steps_.size());
    steps_.push_back(std::move(step));
  }
  slot_count_ = slot.size();
  for (const std::string& o : program_.outputs) output_slots_.push_back(slot.at(o));
  last_use.resize(slot_count_, -1);
  for (int o : output_slots_) last_use[size_t(o)] = int(steps_.size());  // outputs live to the end
  for (size_t s = 0; s < last_use.size(); ++s)
    if (last_use[s] >= 0 && last_use[s] < int(steps_.size()) && !constants_[s].data) steps_[size_t(last_use[s])].release.push_back(int(s));
}

std::vector<Tensor> SimModel::evaluate(const std::vector<Tensor>& inputs) const {
  if (program_.inputs.size() > 1)
    mil_fail("ANE evaluate failed with error 0x1d: the request binds " + std::to_string(program_.inputs.size()) +
             " input surfaces; training programs must take exactly one input [seed README single-input constraint]");
  if (inputs.size() != program_.inputs.size())
    mil_fail("evaluate: the program takes " + std::to_string(program_.inputs.size()) + " inputs, given " + std::to_string(inputs.size()));
  std::vector<Tensor> env = constants_;
  env.resize(slot_count_);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Type& want = program_.inputs[i].second;
    if (inputs[i].type.shape != want.shape || inputs[i].numel() != size_t(want.numel()))
      mil_fail("evaluate: input '" + program_.inputs[i].first + "' must be " + want.str() + ", given " + inputs[i].type.str());
    env[size_t(input_slots_[i])] = inputs[i];
    env[size_t(input_slots_[i])].type = want;
  }
  for (const Step& s : steps_) {
    env[size_t(s.out)] = s.run(env);
    for (int r : s.release) env[size_t(r)].data.reset();
  }
  std::vector<Tensor> out;
  for (int o : output_slots_) out.push_back(env[size_t(o)]);
  return out;
}

}  // namespace anetrain::sim
