package routing

import (
	"encoding/binary"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// A regex prefilter is a necessary condition for a case-insensitive regex to
// match a text, checked on the text's case fold (foldString) with plain
// substring searches before the regex runs. It never rejects a text the regex
// would match:
//
//   - Under (?i) a literal rune matches exactly the runes of its simple
//     folding orbit (and without (?i) only itself), and a character class
//     matches runes whose fold is the fold of one of its members; folding maps
//     every rune to its orbit's one representative, rune by rune, so a text
//     part the regex matches folds to the fold of one of the strings the
//     literal (or class) stands for.
//   - Folding keeps the order of runes, so "A's witness ends before B's
//     starts" in the text holds in its fold too.
//
// req is what any text the regex matches contains: a literal, one of several
// (alt), or several in order without overlap (seq). A nil *req asks for
// nothing. It is checked by the earliest end of a witness starting at or
// after a position (see evalState.reqEnd): for a literal that is its first
// occurrence there; for alt the least of its members'; for seq each part is
// looked for from the end of the one before. If a match of the concatenation
// R1R2 covers [x,m)[m,y) with x >= p, R1's witness ends at some e <= m, so
// the earliest end from p is <= m, and R2's witness lies in [m,y), after it:
// the check passes whenever the regex matches.
type req struct {
	op   reqOp
	lit  int32 // reqLit: index into the set's literal table
	subs []*req
}

type reqOp uint8

const (
	reqLit reqOp = iota
	reqAlt
	reqSeq
)

// Bounds on the finite sets of strings a regex part can match exactly (see
// exactSet), so building them stays cheap.
const (
	maxExactStrings = 16  // strings in one set
	maxExactLen     = 128 // bytes of one folded string
	maxClassRunes   = 64  // runes of a character class worth expanding
)

// litTable interns folded literals for one RuleSet; text_any items and
// prefilter literals share it so that each distinct literal is searched for at
// most once per evaluation.
type litTable struct {
	index map[string]int32
	lits  []lit
}

type lit struct {
	b []byte
	// grams are hashes of pairs of adjacent bytes of b, at most maxLitGrams
	// of them spread over it; none for a one-byte literal.
	grams  [maxLitGrams]uint16
	ngrams uint8
}

const maxLitGrams = 6

func (t *litTable) add(folded string) int32 {
	if i, ok := t.index[folded]; ok {
		return i
	}
	if t.index == nil {
		t.index = map[string]int32{}
	}
	i := int32(len(t.lits))
	t.index[folded] = i
	l := lit{b: []byte(folded)}
	if n := len(folded) - 1; n > 0 {
		m := min(n, maxLitGrams)
		for k := range m {
			j := 1 + k*n/m // pairs (j-1, j), spread over the literal
			l.grams[k] = gram(folded[j-1], folded[j])
		}
		l.ngrams = uint8(m)
	}
	t.lits = append(t.lits, l)
	return i
}

// textSketch records which pairs of adjacent bytes (hashed) occur in a folded
// text: a literal with a pair missing cannot occur in it, and is rejected
// without a search.
type textSketch [gramBits / 64]uint64

const gramBits = 4096

func gram(a, b byte) uint16 { return (uint16(a)<<6 ^ uint16(b)*0x9d) & (gramBits - 1) }

func (k *textSketch) reset(text []byte) {
	*k = textSketch{}
	if len(text) == 0 {
		return
	}
	prev := text[0]
	for _, c := range text[1:] {
		h := gram(prev, c)
		k[h>>6] |= 1 << (h & 63)
		prev = c
	}
}

// mayContain reports whether literal i can occur in the text: false only
// when it cannot.
func (k *textSketch) mayContain(l *lit) bool {
	for _, h := range l.grams[:l.ngrams] {
		if k[h>>6]&(1<<(h&63)) == 0 {
			return false
		}
	}
	return true
}

// regexPrefilter parses pattern as compileRule compiles it and returns its
// prefilter, or nil when it has none worth checking; and lead, the literals
// one of which every match starts with, when the pattern has no assertion
// that looks before a position (^, \A, \b, \B), or nil. With lead, the regex
// can run from the first occurrence of a lead literal on: no match starts
// before it, and the part of the text before it cannot change a match that
// starts later.
func regexPrefilter(pattern string, lits *litTable) (pre, lead *req) {
	re, err := syntax.Parse("(?i)"+pattern, syntax.Perl)
	if err != nil {
		return nil, nil
	}
	pre = requirement(re, lits)
	if looksBehind(re) {
		return pre, nil
	}
	first := re
	for {
		for first.Op == syntax.OpCapture {
			first = first.Sub[0]
		}
		if first.Op != syntax.OpConcat || len(first.Sub) == 0 {
			break
		}
		first = first.Sub[0]
	}
	if set, ok := exactSet(first); ok && !slices.Contains(set, "") {
		lead = &req{op: reqAlt}
		for _, s := range set {
			lead.subs = append(lead.subs, &req{op: reqLit, lit: lits.add(s)})
		}
	}
	return pre, lead
}

// looksBehind reports whether re has an assertion that depends on what
// precedes a position.
func looksBehind(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpBeginText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	}
	return slices.ContainsFunc(re.Sub, looksBehind)
}

// exactSet returns the folded strings re can match when they are few: every
// text re matches folds to one of them. ok is false when the set is unknown or
// too large.
func exactSet(re *syntax.Regexp) (set []string, ok bool) {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return []string{""}, true // zero-width: matches the empty string or nothing
	case syntax.OpLiteral:
		s := foldString(string(re.Rune))
		if len(s) > maxExactLen {
			return nil, false
		}
		return []string{s}, true
	case syntax.OpCharClass:
		n := 0
		for i := 0; i+1 < len(re.Rune); i += 2 {
			n += int(re.Rune[i+1]-re.Rune[i]) + 1
			if n > maxClassRunes {
				return nil, false
			}
		}
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				s := string(foldRune(r))
				if !slices.Contains(out, s) {
					if len(out) == maxExactStrings {
						return nil, false
					}
					out = append(out, s)
				}
			}
		}
		return out, len(out) > 0
	case syntax.OpCapture:
		return exactSet(re.Sub[0])
	case syntax.OpQuest:
		s, ok := exactSet(re.Sub[0])
		if !ok {
			return nil, false
		}
		return union(s, []string{""})
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			s, ok := exactSet(sub)
			if !ok {
				return nil, false
			}
			if out, ok = union(out, s); !ok {
				return nil, false
			}
		}
		return out, true
	case syntax.OpConcat:
		out := []string{""}
		for _, sub := range re.Sub {
			s, ok := exactSet(sub)
			if !ok {
				return nil, false
			}
			if out, ok = product(out, s); !ok {
				return nil, false
			}
		}
		return out, true
	case syntax.OpRepeat:
		if re.Max != re.Min || re.Min > maxExactLen {
			return nil, false
		}
		s, ok := exactSet(re.Sub[0])
		if !ok {
			return nil, false
		}
		out := []string{""}
		for range re.Min {
			if out, ok = product(out, s); !ok {
				return nil, false
			}
		}
		return out, true
	}
	return nil, false
}

func union(a, b []string) ([]string, bool) {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			if len(out) == maxExactStrings {
				return nil, false
			}
			out = append(out, s)
		}
	}
	return out, true
}

func product(a, b []string) ([]string, bool) {
	if len(a)*len(b) > maxExactStrings {
		return nil, false
	}
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			if len(x)+len(y) > maxExactLen {
				return nil, false
			}
			if s := x + y; !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out, true
}

// fromSet is the requirement "one of set": nil when set holds "" (nothing is
// required then).
func fromSet(set []string, lits *litTable) *req {
	if len(set) == 0 || slices.Contains(set, "") {
		return nil
	}
	// A string containing another member adds nothing: any witness of it
	// contains a witness of the shorter one, which ends no later.
	// Sets hold no repeats.
	var keep []string
	for _, s := range set {
		if !slices.ContainsFunc(set, func(t string) bool { return t != s && strings.Contains(s, t) }) {
			keep = append(keep, s)
		}
	}
	if len(keep) == 1 {
		return &req{op: reqLit, lit: lits.add(keep[0])}
	}
	alt := &req{op: reqAlt}
	for _, s := range keep {
		alt.subs = append(alt.subs, &req{op: reqLit, lit: lits.add(s)})
	}
	return alt
}

// requirement returns what every text re matches contains, or nil.
func requirement(re *syntax.Regexp, lits *litTable) *req {
	if set, ok := exactSet(re); ok {
		return fromSet(set, lits)
	}
	switch re.Op {
	case syntax.OpCapture:
		return requirement(re.Sub[0], lits)
	case syntax.OpPlus:
		return requirement(re.Sub[0], lits)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requirement(re.Sub[0], lits)
		}
	case syntax.OpAlternate:
		alt := &req{op: reqAlt}
		for _, sub := range re.Sub {
			r := requirement(sub, lits)
			if r == nil {
				return nil // that branch needs nothing
			}
			if r.op == reqAlt {
				alt.subs = append(alt.subs, r.subs...)
			} else {
				alt.subs = append(alt.subs, r)
			}
		}
		return alt
	case syntax.OpConcat:
		// Runs of adjacent parts with small exact sets become one set of
		// longer literals; every other part contributes its requirement, in
		// order.
		seq := &req{op: reqSeq}
		var run []string
		inRun := false
		flush := func() {
			if inRun {
				if r := fromSet(run, lits); r != nil {
					seq.subs = append(seq.subs, r)
				}
			}
			run, inRun = nil, false
		}
		for _, sub := range re.Sub {
			if set, ok := exactSet(sub); ok {
				if !inRun {
					run, inRun = set, true
					continue
				}
				if p, ok := product(run, set); ok {
					run = p
					continue
				}
				flush()
				run, inRun = set, true
				continue
			}
			flush()
			if r := requirement(sub, lits); r != nil {
				seq.subs = append(seq.subs, r)
			}
		}
		flush()
		switch len(seq.subs) {
		case 0:
			return nil
		case 1:
			return seq.subs[0]
		}
		return seq
	}
	return nil // star, quest, any character, no match: nothing required
}

// String renders r for tests and debugging.
func (r *req) String(lits *litTable) string {
	if r == nil {
		return "*"
	}
	switch r.op {
	case reqLit:
		return strings.ReplaceAll(string(lits.lits[r.lit].b), " ", "␠")
	case reqAlt, reqSeq:
		parts := make([]string, len(r.subs))
		for i, s := range r.subs {
			parts[i] = s.String(lits)
		}
		if r.op == reqAlt {
			return "(" + strings.Join(parts, "|") + ")"
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return "?"
}

// appendFold appends foldString(s) to dst without allocating a string:
// invalid UTF-8 bytes become U+FFFD, as strings.Map makes them. same is the
// length of the longest prefix of the fold (from len(dst) on) in which every
// rune has kept its width, so that offsets up to it are offsets in s too.
// stable reports that every rune of s is ASCII or a rune foldTable marks
// stable, so that s is in NFKC form already (false says nothing).
func appendFold(dst []byte, s string) (out []byte, same int, stable bool) {
	start, same := len(dst), -1
	stable = true
	dst = slices.Grow(dst, len(s))
	t := foldTable()
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			j := i + asciiPrefix(s[i:])
			n := len(dst)
			dst = append(dst, s[i:j]...)
			lowerASCII(dst[n:])
			i = j
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		before := len(dst)
		if int(r) < len(t) {
			dst = utf8.AppendRune(dst, t[r].fold)
			stable = stable && t[r].stable
		} else {
			dst = utf8.AppendRune(dst, foldRune(r))
			stable = false
		}
		if same < 0 && len(dst)-before != n {
			same = before - start
		}
		i += n
	}
	if same < 0 {
		same = len(dst) - start
	}
	return dst, same, stable
}

// foldTable holds, for the runes below its length (Latin, Greek, Cyrillic,
// the cased scripts most messages are in), foldRune of the rune and whether
// NFKC leaves the rune as it is wherever it stands: alone it is in NFKC form
// (a composed "é" is, "ﬁ" is not), it is a starter (combining class 0) and it
// cannot combine with the rune before it. A string of ASCII and such runes
// is in NFKC form.
var foldTable = sync.OnceValue(func() *[0x530]foldEntry {
	var t [0x530]foldEntry
	var buf [utf8.UTFMax]byte
	for r := range t {
		b := buf[:utf8.EncodeRune(buf[:], rune(r))]
		p := norm.NFKC.Properties(b)
		t[r] = foldEntry{
			fold:   foldRune(rune(r)),
			stable: norm.NFKC.IsNormal(b) && p.CCC() == 0 && p.BoundaryBefore(),
		}
	}
	return &t
})

type foldEntry struct {
	fold   rune
	stable bool
}

const ones = 0x0101010101010101

// asciiPrefix returns the length of the longest prefix of s that is ASCII.
func asciiPrefix(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if x&(ones*0x80) != 0 {
			break
		}
	}
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	return i
}

// lowerASCII lowercases b in place; every byte of b is ASCII.
func lowerASCII(b []byte) {
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		// A byte c < 0x80 plus 0x80-'A' has its high bit set when c >= 'A',
		// and plus 0x80-'Z'-1 when c > 'Z', without carrying into the next
		// byte; c is an upper-case letter when the first is set and not the
		// second, and 0x80>>2 is the 0x20 that lowercases it.
		upper := (x + ones*(0x80-'A')) &^ (x + ones*(0x80-'Z'-1)) & (ones * 0x80)
		binary.LittleEndian.PutUint64(b, x|upper>>2)
		b = b[8:]
	}
	for k, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[k] = c + ('a' - 'A')
		}
	}
}
