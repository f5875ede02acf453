// Package command checks values written by the server against a point's
// schema (Convert). The commands themselves are parsed once, by the output
// that received them, with package fbox (plugins/sdk/fbox). Values come
// from outside, so every function here returns an error for bad input and
// never panics (see the fuzz tests).
package command
