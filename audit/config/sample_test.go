package config

import (
	"reflect"
	"testing"
)

// The annotated sample parses and says exactly the defaults.
func TestSampleIsTheDefaults(t *testing.T) {
	c, err := Load("../../configs/audit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("configs/audit.yaml\n %+v\ndefaults\n %+v", *c, want)
	}
}
