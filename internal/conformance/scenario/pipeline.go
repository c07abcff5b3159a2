package scenario

// CIYAML is the pushed .gitlab-ci.yml. Every job that runs does so on
// gantry's own runner with the shell executor; `needs: [build]` lets the
// manual, held and trigger jobs start while the test stage is still busy,
// and `late` (no needs) is skipped because `broken` fails. The long jobs
// print every second: a runner sends a silent job's log only now and then,
// and learns of a cancel when it does.
const CIYAML = `stages: [build, test, deploy]
variables:
  GREETING: hello
build:
  stage: build
  script:
    - mkdir -p out
    - printf 'scenario artifact on %s\n' "$CI_COMMIT_REF_NAME" > out/result.txt
    - printf 'binary payload of %s\n' "$CI_COMMIT_REF_NAME" > out/payload.bin
    - echo "$GREETING from $CI_JOB_NAME"
  artifacts:
    paths: [out/]
unit:
  stage: test
  needs: [build]
  script:
    - cat out/result.txt
    - mkdir -p reports
    - |
      printf '%s\n' '<?xml version="1.0" encoding="UTF-8"?>' '<testsuites><testsuite name="calc" tests="4">' \
        '<testcase classname="calc" name="adds" time="0.5"/>' \
        '<testcase classname="calc" name="subtracts" time="0.25"/>' \
        '<testcase classname="calc" name="divides" time="0.125"><failure message="division by zero">boom</failure></testcase>' \
        '<testcase classname="calc" name="roots" time="0"><skipped/></testcase>' \
        '</testsuite></testsuites>' > reports/junit.xml
  artifacts:
    reports:
      junit: reports/junit.xml
broken:
  stage: test
  needs: [build]
  script:
    - echo "broken attempt $CI_JOB_ID"
    - exit 1
flaky:
  stage: test
  needs: [build]
  allow_failure: true
  script:
    - echo "about to fail"
    - exit 3
whoami:
  stage: test
  needs: [build]
  script:
    - 'curl -sS -H "JOB-TOKEN: $CI_JOB_TOKEN" "$CI_API_V4_URL/job"'
    - echo
long:
  stage: test
  needs: [build]
  script:
    - echo "long job started"
    - for i in $(seq 300); do echo "tick $i"; sleep 1; done
spare:
  stage: test
  needs: [build]
  script:
    - echo "spare job for the clients"
deploy:
  stage: deploy
  needs: [build]
  when: manual
  script:
    - echo "deploying to $DEPLOY_TARGET"
approve:
  stage: deploy
  needs: [build]
  when: manual
  script:
    - echo "approved with ${APPROVAL:-nothing}"
hold:
  stage: deploy
  needs: [build]
  script:
    - echo "$CI_JOB_TOKEN" > "$CI_BUILDS_DIR/hold.token"
    - echo "holding"
    - for i in $(seq 300); do echo "tick $i"; sleep 1; done
late:
  stage: deploy
  script:
    - echo "never runs"
child:
  stage: deploy
  needs: [build]
  trigger:
    include: child.yml
    strategy: depend
`

// ChildYAML is the child pipeline's configuration, in the same commit.
const ChildYAML = `child-test:
  stage: test
  script:
    - echo "child says hi"
`

// StableYAML is the configuration on the branch stable: its pipeline
// succeeds, so its artifacts are reachable by ref.
const StableYAML = `build:
  stage: build
  script:
    - mkdir -p out
    - printf 'scenario artifact on %s\n' "$CI_COMMIT_REF_NAME" > out/result.txt
    - printf 'binary payload of %s\n' "$CI_COMMIT_REF_NAME" > out/payload.bin
  artifacts:
    paths: [out/]
`

// Values the pipelines produce, which the clients assert on.
const (
	ArtifactPath    = "out/result.txt"
	ArtifactContent = "scenario artifact on main\n"
	StableRef       = "stable"
	StableContent   = "scenario artifact on stable\n"
	// BinaryPath has no text type, so it is served as
	// application/octet-stream (clients that only read binary bodies as
	// files, like the Ruby gem, download it).
	BinaryPath     = "out/payload.bin"
	BinaryContent  = "binary payload of main\n"
	StableBinary   = "binary payload of stable\n"
	DeployVariable = "DEPLOY_TARGET"
	DeployValue    = "staging-eu"
)

// Junit is the report unit writes: 4 cases, 2 passed, 1 failed, 1 skipped.
var Junit = JunitTotals{Total: 4, Success: 2, Failed: 1, Skipped: 1, Error: 0, TotalTime: 0.875, Suite: "unit"}

// finalStatus is each parent-pipeline build's status once the scenario
// is built (for a retried name: its latest attempt).
var finalStatus = map[string]string{
	"build": "success", "unit": "success", "broken": "failed", "flaky": "failed", "whoami": "success",
	"long": "canceled", "spare": "success", "deploy": "success", "approve": "manual", "hold": "running", "late": "skipped",
}
