#!/usr/bin/env bash
# status lists every kubeadm and etcd certificate under --root with its
# expiry (pki/*.crt, pki/etcd/*.crt, the kubeconfigs' client certificates,
# /etc/ssl/etcd/ssl/*.pem without keys), warns under 30 days, and
# status --check exits 3 past expiry (or unreadable), 1 within 30 days,
# 0 otherwise. The certificates are made here with openssl.
source "$(dirname "$0")/../lib.sh"
need openssl base64

R=$LAB/root
K=$R/etc/kubernetes P=$R/etc/kubernetes/pki E=$R/etc/ssl/etcd/ssl
mkdir -p "$P/etcd" "$E" "$R/var/lib/kubelet/pki"
C=$LAB/ca
mkdir -p "$C"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$C/ca.key" \
	-out "$P/ca.crt" -days 3650 -subj "/CN=kubernetes" 2>/dev/null
leaf() { # OUT CN DAYS
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
		-out "$LAB/csr" -subj "/CN=$2" 2>/dev/null
	openssl x509 -req -in "$LAB/csr" -CA "$P/ca.crt" -CAkey "$C/ca.key" -CAcreateserial \
		-days "$3" -out "$1" 2>/dev/null
}
leaf "$P/apiserver.crt" kube-apiserver 365
leaf "$P/front-proxy-client.crt" front-proxy-client 10
leaf "$P/etcd/server.crt" stacked-etcd 200
leaf "$E/member-n1.pem" etcd-member-n1 -1
mv "$E/member-n1.pem.key" "$E/member-n1-key.pem"
leaf "$LAB/admin.crt" kubernetes-admin 300
printf 'apiVersion: v1\nkind: Config\nusers:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: %s\n    client-key-data: eA==\n' \
	"$(base64 -w0 <"$LAB/admin.crt")" >"$K/admin.conf"
leaf "$R/var/lib/kubelet/pki/kubelet-client-current.pem" system:node:n1 20
printf 'users:\n- name: default-auth\n  user:\n    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n' >"$K/kubelet.conf"

note "the table: every certificate, its state and days left"
expect_exit 0 "$KFI" status --root "$R"
expect_output "^nothing applied on $R"
expect_output "^  ok +[0-9-]+ [0-9:]+Z +36[45]  kube-apiserver +/etc/kubernetes/pki/apiserver\.crt$"
expect_output "^  warn +[0-9-]+ [0-9:]+Z +(9|10)  front-proxy-client +/etc/kubernetes/pki/front-proxy-client\.crt$"
expect_output "^  ok +.* stacked-etcd +/etc/kubernetes/pki/etcd/server\.crt$"
expect_output "^  ok +.* kubernetes-admin +/etc/kubernetes/admin\.conf \(client\)$"
expect_output "^  warn +.* (19|20)  system:node:n1 +/etc/kubernetes/kubelet\.conf \(client, /var/lib/kubelet/pki/kubelet-client-current\.pem\)$"
expect_output "^  EXPIRED +[0-9-]+ [0-9:]+Z +-1  etcd-member-n1 +/etc/ssl/etcd/ssl/member-n1\.pem$"
expect_output "^  4 ok, 2 expiring within 30 days, 1 expired, 0 unreadable$"
! has -- '-key' "$LAB/out" || fail "a key file is listed"

note "--check: 3 past expiry, 1 within 30 days, 0 when all are fine"
expect_exit 3 "$KFI" status --check --root "$R"
! has '^units:' "$LAB/out" || fail "--check prints more than the certificates"
rm "$E/member-n1.pem"
expect_exit 1 "$KFI" status --check --root "$R"
expect_output "^  4 ok, 2 expiring within 30 days, 0 expired, 0 unreadable$"
rm "$P/front-proxy-client.crt" "$K/kubelet.conf"
expect_exit 0 "$KFI" status --check --root "$R"
expect_output "^  4 ok, 0 expiring within 30 days, 0 expired, 0 unreadable$"
note "a certificate file that holds none is a failure"
printf 'not a certificate\n' >"$P/broken.crt"
expect_exit 3 "$KFI" status --check --root "$R"
expect_output "^  UNREADABLE +- +0  - +/etc/kubernetes/pki/broken\.crt$"

note "etcd renew-certs: a due etcd leaf re-issued from the same CA, key, subject and SANs kept"
R2=$LAB/root2 E2=$LAB/root2/etc/ssl/etcd/ssl
mkdir -p "$E2"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$E2/ca-key.pem" \
	-out "$E2/ca.pem" -days 3650 -subj "/CN=etcd-ca" 2>/dev/null
eleaf() { # NAME DAYS
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$E2/$1-key.pem" \
		-out "$LAB/csr" -subj "/CN=etcd-$1" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,DNS:n1,IP:127.0.0.1,IP:10.0.0.5\nextendedKeyUsage=serverAuth,clientAuth\n' >"$LAB/ext"
	openssl x509 -req -in "$LAB/csr" -CA "$E2/ca.pem" -CAkey "$E2/ca-key.pem" -CAcreateserial \
		-days "$2" -extfile "$LAB/ext" -out "$E2/$1.pem" 2>/dev/null
}
eleaf member-n1 10
eleaf admin-n1 365
pub_before=$(openssl x509 -in "$E2/member-n1.pem" -noout -pubkey)
admin_before=$(sha256sum <"$E2/admin-n1.pem")
expect_exit 0 "$KFI" etcd renew-certs --root "$R2"
expect_output "^changed +renewed /etc/ssl/etcd/ssl/member-n1\.pem \((9|10) days left\), now valid for 3650 days$"
expect_output "^ok +/etc/ssl/etcd/ssl/admin-n1\.pem valid for 36[45] more days$"
expect_output "^plan +run systemctl restart etcd\.service$"
openssl verify -CAfile "$E2/ca.pem" "$E2/member-n1.pem" >/dev/null || fail "renewed certificate is not from the CA"
assert_eq "$(openssl x509 -in "$E2/member-n1.pem" -noout -pubkey)" "$pub_before" "key kept"
openssl x509 -in "$E2/member-n1.pem" -noout -ext subjectAltName | tail -n 1 >"$LAB/san"
has -F 'DNS:localhost, DNS:n1, IP Address:127.0.0.1, IP Address:10.0.0.5' "$LAB/san" || fail "SANs: $(cat "$LAB/san")"
assert_eq "$(openssl x509 -in "$E2/member-n1.pem" -noout -subject)" "subject=CN = etcd-member-n1" "subject kept"
openssl x509 -in "$E2/member-n1.pem" -noout -checkend $((3000 * 86400)) >/dev/null || fail "not valid for years"
assert_eq "$(sha256sum <"$E2/admin-n1.pem")" "$admin_before" "a certificate not due was rewritten"
expect_exit 0 "$KFI" status --check --root "$R2"
expect_exit 0 "$KFI" etcd renew-certs --root "$R2"
! has '^changed' "$LAB/out" || fail "a second renewal changed something"

note "a due certificate without the CA key on the node"
rm "$E2/ca-key.pem"
expect_exit 0 "$KFI" etcd renew-certs --root "$R2"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$LAB/k" \
	-out "$E2/node-n1.pem" -days 5 -subj "/CN=etcd-node-n1" 2>/dev/null
cp "$LAB/k" "$E2/node-n1-key.pem"
expect_exit 2 "$KFI" etcd renew-certs --root "$R2"
expect_output "node-n1\.pem expires in [45] days, but this node has no etcd CA key /etc/ssl/etcd/ssl/ca-key\.pem"
echo "certificate expiry checks passed"
