// Package langtag checks atproto "language" strings: BCP-47 tags (RFC 5646)
// as the atproto data model narrows them — the primary language subtag is
// 2–3 lowercase letters (or the "i-" and grandfathered forms), private-use
// tags start with x — and rejects well-formed tags that are not valid
// (a repeated variant or extension singleton, compared case-insensitively).
// indigo's syntax.ParseLanguage accepts some invalid tags and refuses a few
// valid ones, so records and parameters are checked here.
package langtag

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is what Check's errors match.
var ErrInvalid = errors.New("langtag: invalid language tag")

var grandfathered = map[string]bool{
	// irregular
	"en-GB-oed": true, "i-ami": true, "i-bnn": true, "i-default": true, "i-enochian": true,
	"i-hak": true, "i-klingon": true, "i-lux": true, "i-mingo": true, "i-navajo": true,
	"i-pwn": true, "i-tao": true, "i-tay": true, "i-tsu": true,
	"sgn-BE-FR": true, "sgn-BE-NL": true, "sgn-CH-DE": true,
	// regular
	"art-lojban": true, "cel-gaulish": true, "no-bok": true, "no-nyn": true,
	"zh-guoyu": true, "zh-hakka": true, "zh-min": true, "zh-min-nan": true, "zh-xiang": true,
}

func fail(tag, why string) error { return fmt.Errorf("%w: %q: %s", ErrInvalid, tag, why) }

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}

func isLowerAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return s != ""
}

func isDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9') && !((c|0x20) >= 'a' && (c|0x20) <= 'z') {
			return false
		}
	}
	return s != ""
}

// Check reports whether tag is a valid atproto language tag.
func Check(tag string) error {
	if len(tag) == 0 || len(tag) > 128 {
		return fail(tag, "empty or too long")
	}
	if grandfathered[tag] {
		return nil
	}
	parts := strings.Split(tag, "-")
	for _, p := range parts {
		if !isAlnum(p) || len(p) > 8 {
			return fail(tag, "subtags are 1–8 letters or digits")
		}
	}
	if p := strings.ToLower(parts[0]); p == "x" {
		return privateUse(tag, parts[1:])
	}
	i := 0
	if !isLowerAlpha(parts[0]) || len(parts[0]) < 2 || len(parts[0]) > 3 {
		return fail(tag, "primary language must be 2–3 lowercase letters")
	}
	i++
	// extlang: up to three 3-letter subtags
	for n := 0; n < 3 && i < len(parts) && len(parts[i]) == 3 && isAlpha(parts[i]); n++ {
		i++
	}
	if i < len(parts) && len(parts[i]) == 4 && isAlpha(parts[i]) { // script
		i++
	}
	if i < len(parts) && ((len(parts[i]) == 2 && isAlpha(parts[i])) || (len(parts[i]) == 3 && isDigit(parts[i]))) { // region
		i++
	}
	variants := map[string]bool{}
	for i < len(parts) {
		p := parts[i]
		if (len(p) >= 5 && len(p) <= 8) || (len(p) == 4 && p[0] >= '0' && p[0] <= '9') {
			v := strings.ToLower(p)
			if variants[v] {
				return fail(tag, "variant "+p+" repeated")
			}
			variants[v] = true
			i++
			continue
		}
		break
	}
	singletons := map[string]bool{}
	for i < len(parts) && len(parts[i]) == 1 {
		s := strings.ToLower(parts[i])
		if s == "x" {
			return privateUse(tag, parts[i+1:])
		}
		if singletons[s] {
			return fail(tag, "extension "+parts[i]+" repeated")
		}
		singletons[s] = true
		i++
		n := 0
		for i < len(parts) && len(parts[i]) >= 2 {
			i++
			n++
		}
		if n == 0 {
			return fail(tag, "empty extension")
		}
	}
	if i != len(parts) {
		return fail(tag, "unexpected subtag "+parts[i])
	}
	return nil
}

func privateUse(tag string, rest []string) error {
	if len(rest) == 0 {
		return fail(tag, "empty private use")
	}
	return nil
}
