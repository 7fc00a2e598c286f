/*
 * The files apply writes as they are: systemd units (the upstream ones,
 * with our install paths), crictl's configuration, the kernel modules and
 * sysctls Kubernetes needs, and the firewalld ports. Generated files whose
 * content depends on the bundle (containerd config, etcd.env, kubeadm
 * configuration) are rendered in installer/render.c.
 */
#include "installer/apply/apply.h"

const char kfi_tpl_containerd_unit[] =
	"# Written by kubeferry-install (upstream containerd.service).\n"
	"[Unit]\n"
	"Description=containerd container runtime\n"
	"Documentation=https://containerd.io\n"
	"After=network.target local-fs.target\n"
	"\n"
	"[Service]\n"
	"ExecStartPre=-/sbin/modprobe overlay\n"
	"ExecStart=/usr/local/bin/containerd\n"
	"Type=notify\n"
	"Delegate=yes\n"
	"KillMode=process\n"
	"Restart=always\n"
	"RestartSec=5\n"
	"LimitNPROC=infinity\n"
	"LimitCORE=infinity\n"
	"TasksMax=infinity\n"
	"OOMScoreAdjust=-999\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

const char kfi_tpl_kubelet_unit[] =
	"# Written by kubeferry-install (upstream kubelet.service).\n"
	"[Unit]\n"
	"Description=kubelet: The Kubernetes Node Agent\n"
	"Documentation=https://kubernetes.io/docs/\n"
	"Wants=network-online.target\n"
	"After=network-online.target\n"
	"\n"
	"[Service]\n"
	"ExecStart=/usr/local/bin/kubelet\n"
	"Restart=always\n"
	"StartLimitInterval=0\n"
	"RestartSec=10\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

const char kfi_tpl_kubeadm_dropin[] =
	"# Written by kubeferry-install (upstream 10-kubeadm.conf).\n"
	"[Service]\n"
	"Environment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"\n"
	"Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n"
	"EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n"
	"EnvironmentFile=-/etc/sysconfig/kubelet\n"
	"ExecStart=\n"
	"ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n";

const char kfi_tpl_etcd_unit[] =
	"# Written by kubeferry-install (Kubespray's host etcd unit).\n"
	"[Unit]\n"
	"Description=etcd\n"
	"After=network.target\n"
	"\n"
	"[Service]\n"
	"Type=notify\n"
	"User=root\n"
	"EnvironmentFile=/etc/etcd.env\n"
	"ExecStart=/usr/local/bin/etcd\n"
	"NotifyAccess=all\n"
	"Restart=always\n"
	"RestartSec=10s\n"
	"LimitNOFILE=40000\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

const char kfi_tpl_crictl_yaml[] =
	"runtime-endpoint: unix:///run/containerd/containerd.sock\n"
	"image-endpoint: unix:///run/containerd/containerd.sock\n"
	"timeout: 10\n";

const char kfi_tpl_modules_conf[] =
	"# Written by kubeferry-install: kernel modules Kubernetes needs.\n";

const char kfi_tpl_sysctl_conf[] =
	"# Written by kubeferry-install: sysctls Kubernetes needs.\n"
	"net.ipv4.ip_forward = 1\n"
	"net.bridge.bridge-nf-call-iptables = 1\n"
	"net.bridge.bridge-nf-call-ip6tables = 1\n";

/* firewalld ports: kubeadm's list for control planes and workers, plus
 * flannel's VXLAN. */
const char *const kfi_tpl_cp_ports[] = {"6443/tcp", "2379-2380/tcp", "10250/tcp",
                                        "10257/tcp", "10259/tcp", "8472/udp", NULL};
const char *const kfi_tpl_worker_ports[] = {"10250/tcp", "30000-32767/tcp",
                                            "8472/udp", NULL};
