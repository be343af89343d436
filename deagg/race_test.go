//go:build race

package deagg

const raceEnabled = true
