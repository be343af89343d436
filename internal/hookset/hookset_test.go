package hookset

import (
	"fmt"
	"slices"
	"testing"
)

type named string

func (n named) String() string { return string(n) }

func TestOf(t *testing.T) {
	hs := []any{named("a"), 1, nil, named("b"), "not a Stringer"}
	got := Of[fmt.Stringer](hs)
	if want := []fmt.Stringer{named("a"), named("b")}; !slices.Equal(got, want) {
		t.Fatalf("Of = %v, want %v", got, want)
	}
	if got := Of[error](hs); got != nil {
		t.Fatalf("Of[error] = %v, want nil", got)
	}
}
