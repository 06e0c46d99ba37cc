from appliance.policy import list_labels


def test_list_labels_are_short_and_unique():
    assert list_labels(["/etc/g/vendors/dji.list", "/etc/g/sdk/bugly.list"]) == \
        ["vendors/dji.list", "sdk/bugly.list"]
    assert list_labels(["/a/x/dji.list", "/b/x/dji.list"]) == ["/a/x/dji.list", "/b/x/dji.list"]
