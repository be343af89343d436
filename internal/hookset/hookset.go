// Package hookset sorts metrics hooks by the interfaces they implement, once,
// for the lease manager and the consumer: an event nobody wants then costs a
// nil-slice check, and no type assertion runs per event.
package hookset

// Of returns the hooks of hs that implement T, in their order; nil ones are
// left out.
func Of[T, H any](hs []H) []T {
	var out []T
	for _, h := range hs {
		if t, ok := any(h).(T); ok {
			out = append(out, t)
		}
	}
	return out
}
