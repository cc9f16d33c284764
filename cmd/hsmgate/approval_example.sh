# An approver's key, made with openssl: its private half stays in approver.pem.
AP=$(sed -n 's/.*"approverToken": "\(.*\)".*/\1/p' $(dirname $CA)/../credentials.json)
openssl ecparam -name prime256v1 -genkey -noout -out approver.pem
APPROVER=$(openssl ec -in approver.pem -pubout -outform DER 2>/dev/null | base64 -w0)
# A key whose every use needs one approval of that approver (a 1-of-1 ruleUse).
SKA=demo-ska-$(date +%s)
curl -sS -w '\n' --cacert $CA -H "X-API-KEY: $KM" -H 'Content-Type: application/json' \
  -d '{"label":"'$SKA'","algorithm":"EC","curveOid":"1.2.840.10045.3.1.7","attributes":{"sign":true,"verify":true},
  "policy":{"ruleUse":{"tokens":[{"name":"main","timelock":0,"timeout":0,"groups":[{"name":"approvers","quorum":1,
  "approvals":[{"type":"public_key","name":"approver","value":"'$APPROVER'"}]}]}]},
  "ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}}' $HSMGATE/v1/key
# The asynchronous sign answers 201 with the request's id; the request is PENDING.
printf 'pay 100 to bob' > payload.txt
ID=$(curl -sS --cacert $CA -H "X-API-KEY: $OP" -H 'Content-Type: application/json' \
  -d '{"signRequest":{"signKeyName":"'$SKA'","payload":"'$(base64 -w0 payload.txt)'","signatureAlgorithm":"SHA256_WITH_ECDSA"}}' \
  $HSMGATE/v1/sign | sed -n 's/.*"signRequestId":"\([^"]*\)".*/\1/p')
curl -sS -w '\n' --cacert $CA -H "X-API-KEY: $OP" $HSMGATE/v1/request/$ID
# The approver fetches its task, proving its key by signing the current time.
TS=$(date -u +%Y-%m-%dT%H:%M:%SZ)
TSSIG=$(printf '%s' $TS | openssl dgst -sha256 -sign approver.pem | base64 -w0)
TASK=$(curl -sS --cacert $CA -H "X-API-KEY: $AP" -H 'Content-Type: application/json' \
  -d '{"timestamp":"'$TS'","timestampSignature":"'$TSSIG'","timestampDigestAlgorithm":"SHA-256","approverPublicKey":"'$APPROVER'"}' \
  $HSMGATE/v1/filteredSignApprovalTask)
TASKID=$(printf '%s' "$TASK" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
TBS=$(printf '%s' "$TASK" | sed -n 's/.*"approvalToBeSigned":"\([^"]*\)".*/\1/p')
# It signs the decoded approvalToBeSigned and approves (200): the request executes.
SIG=$(printf '%s' $TBS | base64 -d | openssl dgst -sha256 -sign approver.pem | base64 -w0)
curl -sS -w '%{http_code}\n' --cacert $CA -H "X-API-KEY: $AP" -H 'Content-Type: application/json' \
  -d '{"id":"'$TASKID'","approvalToBeSigned":"'$TBS'","signature":"'$SIG'","approvalDigestAlgorithm":"SHA-256","approverPublicKey":"'$APPROVER'"}' \
  $HSMGATE/v1/approval
# EXECUTED: the result is the signature, which openssl verifies with the key's public key.
curl -sS --cacert $CA -H "X-API-KEY: $OP" $HSMGATE/v1/request/$ID | sed -n 's/.*"result":"\([^"]*\)".*/\1/p' | base64 -d > payload.sig
curl -sS --cacert $CA -H "X-API-KEY: $KM" $HSMGATE/v1/key/$SKA/attributes | sed -n 's/.*"publicKey":"\([^"]*\)".*/\1/p' \
  | base64 -d | openssl pkey -pubin -inform DER -out ska.pem
openssl dgst -sha256 -verify ska.pem -signature payload.sig payload.txt
