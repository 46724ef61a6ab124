// fmt's compiled part, built once for the whole program.
//
// The executable must run when copied alone, so it does not link Debian's libfmt.so, and Debian
// ships no static libfmt. fmt's header-only mode (FMT_HEADER_ONLY) would do, but then every
// translation unit that includes <fmt/format.h> (nearly all: util/log.hpp uses it) compiles
// fmt's whole implementation again, about 3 s each at -O2: a third of the build.
// So our targets include fmt in its ordinary, library mode (rp_fmt in cmake/Dependencies.cmake)
// and this one file supplies what the library would: fmt's out-of-line functions (format-inl.h
// defines them when FMT_FUNC is empty), the instantiations format.h declares extern, and those
// of the templates that core.h and format.h declare but only format-inl.h defines (requested
// here, not left to whatever this file happens to emit for its own use).
// A missing one is a link error, never a behaviour change.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {
template auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template auto decimal_point_impl(locale_ref) -> char;
template auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;
template locale_ref::locale_ref(const std::locale& loc);
template auto locale_ref::get<std::locale>() const -> std::locale;
template void buffer<char>::append(const char* begin, const char* end);
}  // namespace detail
FMT_END_NAMESPACE
