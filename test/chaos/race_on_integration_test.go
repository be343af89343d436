//go:build integration && race

package chaos

const raceEnabled = true
