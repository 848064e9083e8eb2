package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// parseValue turns raw (already trimmed, not empty unless the key is a string
// or a list) into the Go value of k's type, and range-checks it.
func parseValue(k Key, raw string) (any, error) {
	var v any
	switch k.Type {
	case String:
		s := raw
		if len(k.Choices) > 0 {
			canon, ok := choose(k.Choices, raw)
			if !ok {
				return nil, fmt.Errorf("%q is not one of: %s", raw, joinChoices(k.Choices))
			}
			s = canon
		}
		v = s
	case Int:
		n, err := strconv.ParseInt(raw, 10, strconv.IntSize)
		if err != nil {
			return nil, numError(raw, "an integer", err)
		}
		v = int(n)
	case Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, numError(raw, "an integer", err)
		}
		v = n
	case Float:
		f, err := parseDecimal(raw)
		if err != nil {
			return nil, err
		}
		v = f
	case Bool:
		switch strings.ToLower(raw) {
		case "true":
			v = true
		case "false":
			v = false
		default:
			return nil, fmt.Errorf("%q is not true or false", raw)
		}
	case Duration:
		d, err := parseDuration(raw, k.Unit)
		if err != nil {
			return nil, err
		}
		v = d
	case StringList:
		var items []string
		for _, it := range strings.Split(raw, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		v = items
	default:
		return nil, fmt.Errorf("key of unknown type")
	}
	if k.check != nil {
		if err := k.check(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func choose(choices []string, raw string) (string, bool) {
	for _, c := range choices {
		if strings.EqualFold(c, raw) {
			return c, true
		}
	}
	return "", false
}

func numError(raw, what string, err error) error {
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return fmt.Errorf("%s is out of range", raw)
	}
	return fmt.Errorf("%q is not %s", raw, what)
}

// isDecimal accepts [+-]digits[.digits] and [+-].digits, nothing else (no
// exponents, hex, Inf or NaN).
func isDecimal(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

func parseDecimal(raw string) (float64, error) {
	if !isDecimal(raw) {
		return 0, fmt.Errorf("%q is not a number", raw)
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", raw)
	}
	return f, nil
}

// parseDuration reads a number of units ("2", "0.5") or a Go duration
// ("500us", "1m30s").
func parseDuration(raw string, unit time.Duration) (time.Duration, error) {
	if isDecimal(raw) {
		f, err := parseDecimal(raw)
		if err != nil {
			return 0, err
		}
		d := f * float64(unit)
		if d > math.MaxInt64 || d < math.MinInt64 {
			return 0, fmt.Errorf("%s is out of range", raw)
		}
		return time.Duration(math.Round(d)), nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number of %s or a duration such as 250us or 1m30s", raw, unitName(unit))
	}
	return d, nil
}

func unitName(u time.Duration) string {
	switch u {
	case time.Nanosecond:
		return "nanoseconds"
	case time.Microsecond:
		return "microseconds"
	case time.Millisecond:
		return "milliseconds"
	case time.Second:
		return "seconds"
	case time.Minute:
		return "minutes"
	case time.Hour:
		return "hours"
	}
	return u.String() + " units"
}

// formatValue spells the value at ptr (a bound field) as a conf file would.
func formatValue(k Key, ptr any) string {
	switch p := ptr.(type) {
	case *string:
		return *p
	case *int:
		return strconv.Itoa(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *float64:
		return strconv.FormatFloat(*p, 'f', -1, 64)
	case *bool:
		return strconv.FormatBool(*p)
	case *time.Duration:
		if *p%k.Unit == 0 {
			return strconv.FormatInt(int64(*p/k.Unit), 10)
		}
		return strconv.FormatFloat(float64(*p)/float64(k.Unit), 'f', -1, 64)
	case *[]string:
		return strings.Join(*p, ",")
	}
	return fmt.Sprint(ptr)
}

// store puts v, as parseValue returned it, into the field at ptr.
func store(ptr, v any) {
	switch p := ptr.(type) {
	case *string:
		*p = v.(string)
	case *int:
		*p = v.(int)
	case *int64:
		*p = v.(int64)
	case *float64:
		*p = v.(float64)
	case *bool:
		*p = v.(bool)
	case *time.Duration:
		*p = v.(time.Duration)
	case *[]string:
		s, _ := v.([]string)
		*p = append([]string(nil), s...)
	}
}
