package leasetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// The suite's checks. They stop the test at the first failure; the optional
// message is a format and its arguments. The suite depends on nothing but
// the standard library, so that a store's tests that run it inherit no
// assertion library.

func message(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	if format, ok := msgAndArgs[0].(string); ok {
		return ": " + fmt.Sprintf(format, msgAndArgs[1:]...)
	}
	return ": " + fmt.Sprint(msgAndArgs...)
}

func noError(t testing.TB, err error, msgAndArgs ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error%s: %v", message(msgAndArgs), err)
	}
}

func errorIs(t testing.TB, err, target error, msgAndArgs ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want one matching %v%s", err, target, message(msgAndArgs))
	}
}

func equal[T any](t testing.TB, want, got T, msgAndArgs ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("not equal%s:\nwant %+v\ngot  %+v", message(msgAndArgs), want, got)
	}
}

func length[T any](t testing.TB, s []T, n int, msgAndArgs ...any) {
	t.Helper()
	if len(s) != n {
		t.Fatalf("%d elements, want %d%s: %+v", len(s), n, message(msgAndArgs), s)
	}
}

func check(t testing.TB, ok bool, msgAndArgs ...any) {
	t.Helper()
	if !ok {
		t.Fatalf("check failed%s", message(msgAndArgs))
	}
}
