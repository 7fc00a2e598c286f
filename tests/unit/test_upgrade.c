/* The upgrade skew policy (installer/upgrade/skew.c) and the support
 * facts (support.c): every rule, allowed and refused. */
#include "installer/kf_installer.h"
#include "tests/unit/kf_test.h"

static kfi_up_node cp(const char *name, const char *api, const char *kubelet)
{
	kfi_up_node n;

	memset(&n, 0, sizeof n);
	snprintf(n.name, sizeof n.name, "%s", name);
	n.control_plane = 1;
	snprintf(n.apiserver, sizeof n.apiserver, "%s", api);
	snprintf(n.kubelet, sizeof n.kubelet, "%s", kubelet);
	snprintf(n.containerd, sizeof n.containerd, "1.7.24");
	return n;
}

static kfi_up_node worker(const char *name, const char *kubelet)
{
	kfi_up_node n = cp(name, "", kubelet);

	n.control_plane = 0;
	return n;
}

static kfi_up_verdict judge(kfi_up_node *nodes, size_t n, const char *kube, const char *kubeadm)
{
	kfi_up_state s = {0};
	kfi_up_target t = {kube, kubeadm, "1.7.24", "3.5.21"};
	kfi_up_verdict v;

	s.nodes = nodes;
	s.n = n;
	snprintf(s.source, sizeof s.source, "test");
	kfi_upgrade_judge(&s, &t, NULL, &v);
	return v;
}

static void t_one_minor(void)
{
	kfi_up_node n[] = {cp("cp1", "v1.32.5", "v1.32.5"), cp("cp2", "v1.32.5", "v1.32.5"),
	                   worker("w1", "v1.32.5")};
	kfi_up_verdict v = judge(n, 3, "1.33.3", "1.33.3");

	CHECK(v.allowed);
	CHECK(!v.nothing);
	v = judge(n, 3, "1.32.6", "1.32.6");   /* a patch release */
	CHECK(v.allowed);
}

static void t_skipped_minor(void)
{
	kfi_up_node n[] = {cp("cp1", "v1.31.9", "v1.31.9")};
	kfi_up_verdict v = judge(n, 1, "1.33.3", "1.33.3");

	CHECK(!v.allowed);
	CHECK_CONTAINS(v.reason, "upgrade to 1.32 first");
}

static void t_past_kubeadm(void)
{
	kfi_up_node n[] = {cp("cp1", "v1.32.5", "v1.32.5")};
	kfi_up_verdict v = judge(n, 1, "1.33.3", "1.32.9");

	CHECK(!v.allowed);
	CHECK_CONTAINS(v.reason, "kubeadm 1.32.9");
}

static void t_older_bundle(void)
{
	kfi_up_node n[] = {cp("cp1", "v1.33.3", "v1.33.3")};
	kfi_up_verdict v = judge(n, 1, "1.32.5", "1.32.5");

	CHECK(!v.allowed);
	CHECK_CONTAINS(v.reason, "older than the running API server");
	v = judge(n, 1, "1.33.3", "1.33.3");   /* the same: nothing to do */
	CHECK(v.allowed);
	CHECK(v.nothing);
	CHECK_CONTAINS(v.reason, "nothing to upgrade");
}

static void t_kubelet_newer(void)
{
	kfi_up_node n[] = {cp("cp1", "v1.32.5", "v1.32.5"), worker("w1", "v1.33.3")};
	kfi_up_verdict v = judge(n, 2, "1.33.3", "1.33.3");

	CHECK(!v.allowed);
	CHECK_CONTAINS(v.reason, "the kubelet on w1 (v1.33.3) is newer than the API server");
}

static void t_kubelet_too_old(void)
{
	kfi_up_node n[] = {cp("cp1", "v1.32.5", "v1.32.5"), worker("w1", "v1.29.4")};
	kfi_up_verdict v = judge(n, 2, "1.33.3", "1.33.3");

	CHECK(!v.allowed);
	CHECK_CONTAINS(v.reason, "upgrade it to 1.30 or later first");
	n[1] = worker("w1", "v1.30.1");          /* exactly three minors older */
	v = judge(n, 2, "1.33.3", "1.33.3");
	CHECK(v.allowed);
}

static void t_halfway(void)
{
	/* cp1 upgraded, cp2 not yet: a re-run goes on. */
	kfi_up_node n[] = {cp("cp1", "v1.33.3", "v1.33.3"), cp("cp2", "v1.32.5", "v1.32.5")};
	kfi_up_verdict v = judge(n, 2, "1.33.3", "1.33.3");

	CHECK(v.allowed);
	CHECK(!v.nothing);
}

static void t_no_control_plane(void)
{
	kfi_up_node n[] = {worker("w1", "v1.32.5")};
	kfi_up_verdict v = judge(n, 1, "1.33.3", "1.33.3");

	CHECK(!v.allowed);
	CHECK_CONTAINS(v.reason, "no running API server");
}

static void t_support(void)
{
	char why[256];
	kfi_up_node n[] = {cp("cp1", "v1.32.5", "v1.32.5")};
	kfi_up_state s = {n, 1, "test", ""};
	kfi_up_target t = {"1.33.3", "1.33.3", "1.6.20", "3.5.21"};
	kfi_up_verdict v;

	CHECK_INT(kfi_support_containerd(33, "1.7.24", why, sizeof why), 1);
	CHECK_INT(kfi_support_containerd(33, "2.1.3", why, sizeof why), 1);
	CHECK_INT(kfi_support_containerd(33, "2.2.0", why, sizeof why), 1);   /* newer series */
	CHECK_INT(kfi_support_containerd(33, "1.6.20~ds1", why, sizeof why), 0);
	CHECK_CONTAINS(why, "1.6.36");
	CHECK_INT(kfi_support_containerd(33, "1.5.9", why, sizeof why), 0);
	CHECK_INT(kfi_support_containerd(40, "2.1.0", why, sizeof why), -1);
	CHECK_INT(kfi_support_etcd(33, "3.5.21-0", why, sizeof why), 1);
	CHECK_INT(kfi_support_etcd(33, "3.4.23", why, sizeof why), 1);
	CHECK_INT(kfi_support_etcd(33, "3.4.13", why, sizeof why), 0);
	CHECK_INT(kfi_support_etcd(33, "3.6.4", why, sizeof why), 0);
	CHECK_INT(kfi_support_etcd(34, "3.6.4", why, sizeof why), 1);
	kfi_upgrade_judge(&s, &t, NULL, &v);
	CHECK(!v.allowed);
	CHECK_CONTAINS(v.reason, "containerd 1.6.20");
	t.containerd = "1.7.24";
	snprintf(n[0].etcd, sizeof n[0].etcd, "3.5.22");
	kfi_upgrade_judge(&s, &t, NULL, &v);
	CHECK(!v.allowed);
	CHECK_CONTAINS(v.reason, "etcd is never downgraded");
}

static void t_table(void)
{
	kfi_up_node n[] = {cp("cp1", "v1.32.5", "v1.32.5"), worker("w1", "v1.32.5")};
	kfi_up_state s = {n, 2, "test", ""};
	kfi_up_target t = {"1.33.3", "1.33.3", "1.7.24", NULL};
	kfi_up_verdict v;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f != NULL);
	kfi_upgrade_judge(&s, &t, f, &v);
	fclose(f);
	CHECK_CONTAINS(buf, "NODE");
	CHECK_CONTAINS(buf, "cp1                  control-plane  apiserver   v1.32.5      1.33.3       upgrade");
	CHECK_CONTAINS(buf, "w1                   worker         kubelet     v1.32.5      1.33.3       upgrade");
	free(buf);
}

KF_TEST_MAIN(t_one_minor, t_skipped_minor, t_past_kubeadm, t_older_bundle, t_kubelet_newer,
             t_kubelet_too_old, t_halfway, t_no_control_plane, t_support, t_table)
