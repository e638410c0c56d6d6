package sedctl

import "testing"

// TestResumeOptions: the resume group's options take no name another
// option already has.
func TestResumeOptions(t *testing.T) {
	if len(resumeOptionClashes) > 0 {
		t.Errorf("resume options clash with existing ones: %v", resumeOptionClashes)
	}
	for _, c := range resumeCommands() {
		for _, o := range c.opts {
			if _, ok := optionSpecs[o]; !ok {
				t.Errorf("%s: option --%s has no spec", c.path, o)
			}
		}
	}
}
