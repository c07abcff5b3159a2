package config

import (
	"strings"
	"testing"
)

func TestObjectStoreURL(t *testing.T) {
	env := map[string]string{
		"GANTRY_OBJECT_STORE_URL":        "s3://builds/gantry/blobs/?endpoint=127.0.0.1:7070&region=us-east-1&insecure=true&path_style=true",
		"GANTRY_OBJECT_STORE_ACCESS_KEY": "ak",
		"GANTRY_OBJECT_STORE_SECRET_KEY": "sk",
	}
	c, _, err := Load("gantry", nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := ObjectStore{Endpoint: "127.0.0.1:7070", Bucket: "builds", Prefix: "gantry/blobs/", Region: "us-east-1",
		Insecure: true, PathStyle: true, AccessKey: "ak", SecretKey: "sk"}
	if c.ObjectStore == nil || *c.ObjectStore != want {
		t.Fatalf("%+v", c.ObjectStore)
	}

	if o, err := ParseObjectStoreURL("s3://b", "ak", "sk"); err != nil || o.Endpoint != "s3.amazonaws.com" || o.Insecure || o.Prefix != "" {
		t.Fatalf("defaults: %+v %v", o, err)
	}

	c, _, err = Load("gantry", nil, func(string) string { return "" })
	if err != nil || c.ObjectStore != nil {
		t.Fatalf("unset must mean files: %+v %v", c.ObjectStore, err)
	}

	for _, bad := range []struct{ url, ak, sk, says string }{
		{"http://b?endpoint=x", "ak", "sk", "scheme"},
		{"s3://?endpoint=x", "ak", "sk", "no bucket"},
		{"s3://ak:hunter2@b?endpoint=x", "", "", "not in the URL"},
		{"s3://b?endpoint=http://x:1", "ak", "sk", "without a scheme"},
		{"s3://b?insecure=maybe", "ak", "sk", "true or false"},
		{"s3://b?endpont=x", "ak", "sk", "unknown parameter"},
		{"s3://b?endpoint=x", "ak", "", "must both be set"},
		{"s3://b\x7f", "ak", "sk", "invalid"},
	} {
		_, err := ParseObjectStoreURL(bad.url, bad.ak, bad.sk)
		if err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("%q: %v, want an error saying %q", bad.url, err, bad.says)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the password leaked into %v", err)
		}
	}
}
