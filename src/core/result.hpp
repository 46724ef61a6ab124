// Result<T>: an expected-style value for expected failures (bad input, unreachable backend).
//
// Not std::expected: clang 14 (our libFuzzer compiler) cannot build libstdc++'s <expected>, and
// every parser must be fuzzable. The interface is the subset of std::expected we use, so a later
// switch is mechanical. Not-found is std::optional, never an error.
// Thread-safety: a plain value type.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace rp::core {

// An error is a human-readable message; callers add context ("config line 3: ...").
struct Error {
    std::string message;
};

inline Error make_error(std::string message) { return Error{std::move(message)}; }

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit on purpose
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

    bool has_value() const { return v_.index() == 0; }
    explicit operator bool() const { return has_value(); }

    // REQUIRES: has_value()
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    // REQUIRES: !has_value()
    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

// Result<void> equivalent.
struct Ok {};
using Status = Result<Ok>;
inline Status ok() { return Ok{}; }

}  // namespace rp::core
