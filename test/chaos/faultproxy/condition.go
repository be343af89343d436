package faultproxy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// addConditionItem adds the item to a ConditionalCheckFailedException answer
// when the request asked for it (Options.ConditionItems). It reads the item
// with a consistent GetItem sent with the request's headers: the test
// servers do not check signatures.
func (p *Proxy) addConditionItem(h http.Header, u *url.URL, op string, body []byte, a *answer) {
	if a.status != http.StatusBadRequest || (op != "DynamoDB_20120810.UpdateItem" && op != "DynamoDB_20120810.DeleteItem") {
		return
	}
	var errAnswer map[string]json.RawMessage
	if json.Unmarshal(a.body, &errAnswer) != nil || errAnswer["Item"] != nil {
		return
	}
	var code string
	if json.Unmarshal(errAnswer["__type"], &code) != nil || !strings.HasSuffix(code, "ConditionalCheckFailedException") {
		return
	}
	var req struct {
		TableName                           string
		Key                                 json.RawMessage
		ReturnValuesOnConditionCheckFailure string
	}
	if json.Unmarshal(body, &req) != nil || req.ReturnValuesOnConditionCheckFailure != "ALL_OLD" {
		return
	}
	get, err := json.Marshal(map[string]any{"TableName": req.TableName, "Key": req.Key, "ConsistentRead": true})
	if err != nil {
		return
	}
	gh := h.Clone()
	gh.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
	got, err := p.forward(gh, u, get)
	if err != nil || got.status != http.StatusOK {
		return // answer as the server did
	}
	var item struct{ Item json.RawMessage }
	if json.Unmarshal(got.body, &item) != nil || len(bytes.TrimSpace(item.Item)) == 0 {
		return // deleted meanwhile
	}
	errAnswer["Item"] = item.Item
	if b, err := json.Marshal(errAnswer); err == nil {
		a.body = b
	}
}
