package checkpoint

// MarshalText formats p as String does, so that a Position reads as one
// string in JSON and logs.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a position written by MarshalText, as Parse does. The
// empty text reads as the zero Position, so that an absent checkpoint
// round-trips.
func (p *Position) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = Position{}
		return nil
	}
	q, err := Parse(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}
