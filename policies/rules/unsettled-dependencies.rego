# An example of a custom audit rule for kiln (Rego v1, evaluated by regorus).
#
# Kernels run on shared servers; their dependencies should be settled code:
# - a `-sys` crate binds a native library, which a wasm32-wasip1 kernel cannot link: deny it
#   (it fails later in the build anyway, with a worse message);
# - a pre-release (`1.0.0-rc.1`) or `0.0.x` version promises nothing about its API or its
#   soundness: a person should look at it.
#
# Enable it in a policy with:  [rules] files = ["rules/unsettled-dependencies.rego"]
package kiln.rules

deny contains finding if {
	some p in input.report.packages
	p.source != null
	endswith(p.name, "-sys")
	finding := {
		"code": "rule-native-binding",
		"subject": sprintf("%s@%s", [p.name, p.version]),
		"message": sprintf("%s@%s binds a native library, which a wasm kernel cannot link", [p.name, p.version]),
	}
}

review contains finding if {
	some p in input.report.packages
	p.source != null
	unsettled(p.version)
	finding := {
		"code": "rule-unsettled-version",
		"subject": sprintf("%s@%s", [p.name, p.version]),
		"message": sprintf("%s@%s is a pre-release or 0.0.x version", [p.name, p.version]),
	}
}

unsettled(version) if contains(version, "-")

unsettled(version) if startswith(version, "0.0.")
