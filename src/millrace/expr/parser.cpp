#include <cctype>
#include <charconv>

#include <fmt/format.h>

#include "millrace/expr/ast.h"

namespace millrace::expr {
namespace {

struct Token {
  enum class Kind { End, Number, Duration, String, Name, Op };
  Kind kind = Kind::End;
  int column = 1;
  std::string text;  // names, operators, string contents, number text
  Value value;       // numbers and durations
};

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<std::unique_ptr<Node>> run() {
    if (!advance()) return error_;
    if (tok_.kind == Token::Kind::End) {
      fail(tok_.column, "empty expression");
      return error_;
    }
    auto n = parse_or();
    if (!n) return error_;
    if (tok_.kind != Token::Kind::End) {
      fail(tok_.column, fmt::format("unexpected '{}' after a complete expression", tok_.text));
      return error_;
    }
    return n;
  }

 private:
  // Records the first error; parsing then unwinds.
  void fail(int column, const std::string& msg) {
    if (error_.ok()) error_ = Status::Error(fmt::format("at column {}: {}", column, msg));
  }

  // Reads the next token into tok_; false (with error_ set) on bad input.
  bool advance() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    tok_ = Token();
    tok_.column = static_cast<int>(pos_) + 1;
    if (pos_ >= text_.size()) return true;
    const char c = text_[pos_];
    auto is_name_char = [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
    };
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t start = pos_;
      while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
      tok_.kind = Token::Kind::Name;
      tok_.text = std::string(text_.substr(start, pos_ - start));
      return true;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && pos_ + 1 < text_.size() &&
         std::isdigit(static_cast<unsigned char>(text_[pos_ + 1])))) {
      return lex_number();
    }
    if (c == '\'' || c == '"') return lex_string(c);
    static const char* kTwo[] = {"==", "!=", "<=", ">="};
    for (const char* op : kTwo) {
      if (text_.substr(pos_, 2) == op) {
        tok_.kind = Token::Kind::Op;
        tok_.text = op;
        pos_ += 2;
        return true;
      }
    }
    if (std::string_view("+-*/%<>(),.").find(c) != std::string_view::npos) {
      tok_.kind = Token::Kind::Op;
      tok_.text = std::string(1, c);
      ++pos_;
      return true;
    }
    if (c == '=') {
      fail(tok_.column, "'=' is not an operator; compare with '=='");
      return false;
    }
    if (c == '&' || c == '|' || c == '!') {
      fail(tok_.column, fmt::format("unexpected '{}'; write and, or, not", c));
      return false;
    }
    fail(tok_.column, fmt::format("unexpected character '{}'", c));
    return false;
  }

  bool lex_number() {
    size_t start = pos_;
    bool is_double = false;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      is_double = true;
      ++pos_;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < text_.size() && (text_[p] == '+' || text_[p] == '-')) ++p;
      if (p < text_.size() && std::isdigit(static_cast<unsigned char>(text_[p]))) {
        is_double = true;
        pos_ = p;
        while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
      }
    }
    std::string_view num = text_.substr(start, pos_ - start);
    tok_.text = std::string(num);
    // A unit glued to the number makes a duration.
    size_t ustart = pos_;
    while (pos_ < text_.size() && std::isalpha(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    std::string_view unit = text_.substr(ustart, pos_ - ustart);
    if (!unit.empty()) {
      int64_t scale = 0;
      if (unit == "ms") scale = 1;
      if (unit == "s") scale = 1000;
      if (unit == "m") scale = 60'000;
      if (unit == "h") scale = 3'600'000;
      if (unit == "d") scale = 86'400'000;
      if (scale == 0 || is_double) {
        fail(tok_.column, fmt::format("'{}{}' is not a number or a duration (units: ms, s, m, h, "
                                      "d on a whole number, e.g. 30d)",
                                      num, unit));
        return false;
      }
      int64_t n = 0;
      auto r = std::from_chars(num.data(), num.data() + num.size(), n);
      if (r.ec != std::errc() || n > INT64_MAX / scale) {
        fail(tok_.column, fmt::format("duration '{}{}' is too large", num, unit));
        return false;
      }
      tok_.kind = Token::Kind::Duration;
      tok_.value = Value::integer(n * scale);
      tok_.text += unit;
      return true;
    }
    tok_.kind = Token::Kind::Number;
    if (!is_double) {
      int64_t n = 0;
      auto r = std::from_chars(num.data(), num.data() + num.size(), n);
      if (r.ec == std::errc()) {
        tok_.value = Value::integer(n);
        return true;
      }
    }
    double d = 0;
    auto r = std::from_chars(num.data(), num.data() + num.size(), d);
    if (r.ec != std::errc()) {
      fail(tok_.column, fmt::format("'{}' is not a number", num));
      return false;
    }
    tok_.value = Value::number(d);
    return true;
  }

  bool lex_string(char quote) {
    int column = tok_.column;
    ++pos_;
    std::string s;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      char ch = text_[pos_++];
      if (ch == '\\' && pos_ < text_.size()) ch = text_[pos_++];
      s += ch;
    }
    if (pos_ >= text_.size()) {
      fail(column, "string is not closed");
      return false;
    }
    ++pos_;
    tok_.kind = Token::Kind::String;
    tok_.text = std::move(s);
    return true;
  }

  bool is_op(const char* op) const { return tok_.kind == Token::Kind::Op && tok_.text == op; }
  bool is_word(const char* w) const { return tok_.kind == Token::Kind::Name && tok_.text == w; }

  std::unique_ptr<Node> make(Node::Kind kind, int column, std::string text) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->column = column;
    n->text = std::move(text);
    return n;
  }

  std::unique_ptr<Node> binary(std::string op, int column, std::unique_ptr<Node> a,
                               std::unique_ptr<Node> b) {
    auto n = make(Node::Kind::Binary, column, std::move(op));
    n->args.push_back(std::move(a));
    n->args.push_back(std::move(b));
    return n;
  }

  std::unique_ptr<Node> parse_or() {
    auto left = parse_and();
    while (left && is_word("or")) {
      int column = tok_.column;
      if (!advance()) return nullptr;
      auto right = parse_and();
      if (!right) return nullptr;
      left = binary("or", column, std::move(left), std::move(right));
    }
    return left;
  }

  std::unique_ptr<Node> parse_and() {
    auto left = parse_not();
    while (left && is_word("and")) {
      int column = tok_.column;
      if (!advance()) return nullptr;
      auto right = parse_not();
      if (!right) return nullptr;
      left = binary("and", column, std::move(left), std::move(right));
    }
    return left;
  }

  std::unique_ptr<Node> parse_not() {
    if (is_word("not")) {
      int column = tok_.column;
      if (!advance()) return nullptr;
      auto operand = parse_not();
      if (!operand) return nullptr;
      auto n = make(Node::Kind::Unary, column, "not");
      n->args.push_back(std::move(operand));
      return n;
    }
    return parse_cmp();
  }

  std::unique_ptr<Node> parse_cmp() {
    auto left = parse_sum();
    if (!left) return nullptr;
    for (const char* op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (is_op(op)) {
        int column = tok_.column;
        if (!advance()) return nullptr;
        auto right = parse_sum();
        if (!right) return nullptr;
        auto n = binary(op, column, std::move(left), std::move(right));
        for (const char* op2 : {"==", "!=", "<=", ">=", "<", ">"})
          if (is_op(op2)) {
            fail(tok_.column, "comparisons do not chain; join them with 'and'");
            return nullptr;
          }
        return n;
      }
    }
    return left;
  }

  std::unique_ptr<Node> parse_sum() {
    auto left = parse_product();
    while (left && (is_op("+") || is_op("-"))) {
      std::string op = tok_.text;
      int column = tok_.column;
      if (!advance()) return nullptr;
      auto right = parse_product();
      if (!right) return nullptr;
      left = binary(op, column, std::move(left), std::move(right));
    }
    return left;
  }

  std::unique_ptr<Node> parse_product() {
    auto left = parse_unary();
    while (left && (is_op("*") || is_op("/") || is_op("%"))) {
      std::string op = tok_.text;
      int column = tok_.column;
      if (!advance()) return nullptr;
      auto right = parse_unary();
      if (!right) return nullptr;
      left = binary(op, column, std::move(left), std::move(right));
    }
    return left;
  }

  std::unique_ptr<Node> parse_unary() {
    if (is_op("-")) {
      int column = tok_.column;
      if (!advance()) return nullptr;
      auto operand = parse_unary();
      if (!operand) return nullptr;
      auto n = make(Node::Kind::Unary, column, "-");
      n->args.push_back(std::move(operand));
      return n;
    }
    return parse_postfix();
  }

  std::unique_ptr<Node> parse_postfix() {
    auto n = parse_primary();
    while (n && is_op(".")) {
      if (!advance()) return nullptr;
      if (tok_.kind != Token::Kind::Name) {
        fail(tok_.column, "expected a name after '.'");
        return nullptr;
      }
      auto m = make(Node::Kind::Member, tok_.column, tok_.text);
      m->args.push_back(std::move(n));
      n = std::move(m);
      if (!advance()) return nullptr;
    }
    return n;
  }

  std::unique_ptr<Node> parse_primary() {
    const int column = tok_.column;
    switch (tok_.kind) {
      case Token::Kind::End:
        fail(column, "the expression ends too early");
        return nullptr;
      case Token::Kind::Number:
      case Token::Kind::Duration: {
        auto n = make(Node::Kind::Literal, column, tok_.text);
        n->literal = tok_.value;
        if (!advance()) return nullptr;
        return n;
      }
      case Token::Kind::String: {
        auto n = make(Node::Kind::Literal, column, "");
        n->string_value = tok_.text;
        n->literal = Value::string({});  // the compiler points it at string_value
        if (!advance()) return nullptr;
        return n;
      }
      case Token::Kind::Name: {
        std::string name = tok_.text;
        if (name == "true" || name == "false" || name == "null") {
          auto n = make(Node::Kind::Literal, column, name);
          n->literal = name == "null" ? Value::null() : Value::boolean(name == "true");
          if (!advance()) return nullptr;
          return n;
        }
        if (name == "and" || name == "or" || name == "not") {
          fail(column, fmt::format("expected a value before '{}'", name));
          return nullptr;
        }
        if (!advance()) return nullptr;
        if (!is_op("(")) return make(Node::Kind::Name, column, name);
        auto call = make(Node::Kind::Call, column, name);
        if (!advance()) return nullptr;
        if (!is_op(")")) {
          for (;;) {
            auto arg = parse_or();
            if (!arg) return nullptr;
            call->args.push_back(std::move(arg));
            if (is_op(")")) break;
            if (!is_op(",")) {
              fail(tok_.column, fmt::format("expected ',' or ')' in the arguments of {}()", name));
              return nullptr;
            }
            if (!advance()) return nullptr;
          }
        }
        if (!advance()) return nullptr;
        return call;
      }
      case Token::Kind::Op:
        if (is_op("(")) {
          if (!advance()) return nullptr;
          auto inner = parse_or();
          if (!inner) return nullptr;
          if (!is_op(")")) {
            fail(tok_.column, "expected ')'");
            return nullptr;
          }
          if (!advance()) return nullptr;
          return inner;
        }
        fail(column, fmt::format("expected a value, found '{}'", tok_.text));
        return nullptr;
    }
    return nullptr;
  }

  std::string_view text_;
  size_t pos_ = 0;
  Token tok_;
  Status error_;
};

}  // namespace

Result<std::unique_ptr<Node>> parse(std::string_view text) {
  Parser p(text);
  return p.run();
}

const char* type_name(Type t) {
  switch (t) {
    case Type::Null:
      return "null";
    case Type::Bool:
      return "bool";
    case Type::Int:
      return "int";
    case Type::Double:
      return "double";
    case Type::String:
      return "string";
    case Type::Row:
      return "row";
  }
  return "?";
}

}  // namespace millrace::expr
