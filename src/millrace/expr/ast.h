// The syntax tree of one expression, as the parser builds it and the compiler
// type-checks it. Every node keeps the 1-based column where it starts, so an
// error can point at the offending text.
//
// Grammar (lowest precedence first):
//   expr    := or
//   or      := and ("or" and)*
//   and     := not ("and" not)*
//   not     := "not" not | cmp
//   cmp     := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum)?
//   sum     := product (("+" | "-") product)*
//   product := unary (("*" | "/" | "%") unary)*
//   unary   := "-" unary | postfix
//   postfix := primary ("." NAME)*
//   primary := NUMBER | DURATION | STRING | "true" | "false" | "null"
//            | NAME "(" (expr ("," expr)*)? ")" | NAME | "(" expr ")"
// NUMBER: 12, 1.5, 2e-3 (integers stay integers); DURATION: a number with a
// unit glued to it (250ms, 5s, 10m, 2h, 30d), an integer of milliseconds;
// STRING: 'text' or "text" with \\ \' \" escapes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/expr/value.h"

namespace millrace::expr {

struct Node {
  enum class Kind { Literal, Name, Member, Call, Unary, Binary };
  Kind kind = Kind::Literal;
  int column = 1;
  std::string text;  // Name/Member/Call: the name; Unary/Binary: the operator
  Value literal;     // Literal (strings view `string_value`)
  std::string string_value;
  std::vector<std::unique_ptr<Node>> args;  // Member: [object]; Call: arguments; operands
};

// Parses `text`; an error message starts with "at column N: ".
Result<std::unique_ptr<Node>> parse(std::string_view text);

}  // namespace millrace::expr
