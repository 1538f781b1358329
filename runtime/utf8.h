/* UTF-8 as Rust's str (the tokenizers library) and Python's str accept it:
 * no overlong forms, surrogates or code points above U+10FFFF. */
#ifndef SV_UTF8_H
#define SV_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes the character at s (n bytes available) into *cp; returns its
 * length, 0 if it is not valid UTF-8 (overlong, surrogate, > U+10FFFF,
 * truncated). */
size_t sv_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Whether s[0..n) is valid UTF-8; if not, *bad_at is the first bad byte. */
bool sv_utf8_valid(const char *s, size_t n, size_t *bad_at);

#endif
