// Evaluate IAM requests with @cloud-copilot/iam-simulate (AWS's policy evaluation logic).
// stdin: [{principal, action, resource, account, context, identity, resourcePolicy}]; stdout: one
// decision per request ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied", or "error: ...").
// Used by tests/iam_calls.py; not shipped.
import { runSimulation } from '@cloud-copilot/iam-simulate'

let input = ''
for await (const chunk of process.stdin) input += chunk
const answers = []
for (const r of JSON.parse(input)) {
  const response = await runSimulation({
    identityPolicies: r.identity ? [{ name: 'template', policy: r.identity }] : [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(r.resourcePolicy ? { resourcePolicy: r.resourcePolicy } : {}),
    request: {
      action: r.action,
      principal: r.principal,
      resource: { resource: r.resource, accountId: r.account },
      contextVariables: r.context
    }
  }, {})
  answers.push(response.resultType === 'error'
    ? 'error: ' + JSON.stringify(response.errors)
    : response.overallResult)
}
process.stdout.write(JSON.stringify(answers))
