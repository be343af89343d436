// Package examples holds runnable programs that use gokcl; each lives in its
// own sub-directory.
package examples
