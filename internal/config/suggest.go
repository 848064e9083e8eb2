package config

import "fmt"

// suggestion names the key closest to an unknown one, as
// ` (did you mean "journalMaxGroupWaitMSec"?)`, or returns "" when nothing is
// close. Keys of role are preferred; a spelling Pulsar or BookKeeper uses
// for a key Magnetar spells differently is named directly.
func suggestion(name string, role Role) string {
	if hint, ok := foreignHint(name, role); ok {
		return " (" + hint + ")"
	}
	best, bestDist := "", -1
	for _, k := range schema().keys {
		d := editDistance(lower(name), lower(k.Name))
		if !k.In(role) {
			d++ // prefer the role's own keys
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = k.Name, d
		}
	}
	// Allow about one slip per five characters, at least two.
	limit := max(2, len(name)/5)
	if best == "" || bestDist > limit {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, counting bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
