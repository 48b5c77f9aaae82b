package isapi

import (
	"encoding/json"
	"maps"
)

// extra keeps the JSON members a type does not know, so that a GET, edit,
// PUT round trip does not erase fields of newer firmware.
type extra map[string]json.RawMessage

// decodeKeeping decodes b into known and remembers every member in x.
func decodeKeeping(b []byte, known any, x *extra) error {
	if err := json.Unmarshal(b, known); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	*x = all
	return nil
}

// encodeMerged writes known's members over the remembered ones.
func encodeMerged(x extra, known any, drop ...string) ([]byte, error) {
	b, err := json.Marshal(known)
	if err != nil {
		return nil, err
	}
	if len(x) == 0 && len(drop) == 0 {
		return b, nil
	}
	var k map[string]json.RawMessage
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, err
	}
	out := maps.Clone(map[string]json.RawMessage(x))
	if out == nil {
		out = map[string]json.RawMessage{}
	}
	for _, d := range drop {
		delete(out, d)
	}
	maps.Copy(out, k)
	return json.Marshal(out)
}
