// required_literal: a string that occurs in every subject a regex matches, so that a user's
// `[[pattern]]` joins the literal prefilter instead of making every line a candidate.
//
// The regex is read the way PCRE2 reads it with no compile options, conservatively: only runs
// of plain characters at the top level count (outside groups and classes, not under a
// quantifier that may repeat them zero times). Anything the reading is not sure of gives "no
// literal", which is always correct (every line is tried): an alternation at the top level,
// option settings such as (?i) or (?x), (*VERB)s, \Q...\E, and escapes other than escaped
// punctuation and the single-letter classes and assertions (\d, \s, \b, ...).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rp::matching {

// The longest such run (the later one on a tie), or "" if none has at least min_size bytes.
std::string required_literal(std::string_view regex, std::size_t min_size = 3);

}  // namespace rp::matching
