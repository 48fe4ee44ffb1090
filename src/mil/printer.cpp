#include "mil/printer.h"

namespace anetrain::mil {

std::string print_op(const Op& op) {
  std::string s = op.type.str() + " " + op.out + " = " + op.kind + "(";
  for (size_t i = 0; i < op.args.size(); ++i) {
    const Arg& a = op.args[i];
    s += (i ? "," : "") + a.name + "=";
    if (a.is_literal) {
      s += a.literal.str_literal();
    } else if (a.tuple) {
      s += "(";
      for (size_t j = 0; j < a.vars.size(); ++j) s += (j ? "," : "") + a.vars[j];
      s += ")";
    } else {
      s += a.vars.at(0);
    }
  }
  s += ")[";
  for (size_t i = 0; i < op.attrs.size(); ++i) s += (i ? ", " : "") + op.attrs[i].name + "=" + op.attrs[i].value.str_literal();
  return s + "];";
}

std::string print_program(const Program& p) {
  std::string s = "program(" + p.version + ")\n[buildInfo = dict<string, string>({";
  for (size_t i = 0; i < p.build_info.size(); ++i)
    s += std::string(i ? ", " : "") + "{\"" + p.build_info[i].first + "\", \"" + p.build_info[i].second + "\"}";
  s += "})]\n{\n    func " + p.function + "<" + p.opset + ">(";
  for (size_t i = 0; i < p.inputs.size(); ++i) s += (i ? ", " : "") + p.inputs[i].second.str(true) + " " + p.inputs[i].first;
  s += ") {\n";
  for (const Op& op : p.ops) s += "        " + print_op(op) + "\n";
  s += "    } -> (";
  for (size_t i = 0; i < p.outputs.size(); ++i) s += (i ? ", " : "") + p.outputs[i];
  return s + ");\n}\n";
}

}  // namespace anetrain::mil
