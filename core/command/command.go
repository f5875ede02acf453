// Package command parses the commands the server sends (point writes,
// alarm acknowledgements) and checks written values against a point's
// schema. Payloads come from outside, so every function here returns an
// error for bad input and never panics (see the fuzz tests).
package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// Write is a parsed write command: {"id":"req-1","points":{"plc1.sp":75.5}}.
type Write struct {
	ID     string
	Points []WritePoint // sorted by name, for stable replies
}

// WritePoint is one requested point value, still as raw JSON.
type WritePoint struct {
	Name  string
	Value json.RawMessage
}

// ParseWrite parses a write payload. The id is returned even when the rest
// is bad, so that the error reply can carry it.
func ParseWrite(payload []byte) (*Write, error) {
	var raw struct {
		ID     json.RawMessage            `json:"id"`
		Points map[string]json.RawMessage `json:"points"`
	}
	w := &Write{}
	if err := json.Unmarshal(payload, &raw); err != nil {
		w.ID = salvageID(payload)
		return w, fmt.Errorf("payload is not a JSON object: %v", err)
	}
	w.ID = idString(raw.ID)
	if len(raw.Points) == 0 {
		return w, errors.New(`"points" is missing or empty; want {"id":"...","points":{"device.point":value}}`)
	}
	for name, v := range raw.Points {
		w.Points = append(w.Points, WritePoint{Name: name, Value: v})
	}
	sort.Slice(w.Points, func(i, j int) bool { return w.Points[i].Name < w.Points[j].Name })
	return w, nil
}

// Ack is a parsed alarm acknowledgement: {"id":"a-1","rule":"boiler"}.
type Ack struct {
	ID   string
	Rule string
}

// ParseAck parses an acknowledgement payload.
func ParseAck(payload []byte) (*Ack, error) {
	var raw struct {
		ID   json.RawMessage `json:"id"`
		Rule string          `json:"rule"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return &Ack{ID: salvageID(payload)}, fmt.Errorf("payload is not a JSON object: %v", err)
	}
	a := &Ack{ID: idString(raw.ID), Rule: raw.Rule}
	if a.Rule == "" {
		return a, errors.New(`"rule" is missing`)
	}
	return a, nil
}

// idString accepts a string or number id.
func idString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// salvageID finds "id" in an otherwise broken payload, best effort.
func salvageID(payload []byte) string {
	dec := json.NewDecoder(bytes.NewReader(payload))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return ""
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return ""
		}
		if k == "id" {
			return idString(v)
		}
	}
	return ""
}
