from appliance.dns.ratelimit import RateLimiter


def test_token_bucket_per_client(fake_time):
    limiter = RateLimiter(rate=10, burst=5, clock=lambda: fake_time.now)
    assert sum(limiter.allow("10.0.0.1") for _ in range(20)) == 5
    assert limiter.allow("10.0.0.2")                       # another device is not starved
    fake_time.advance(0.5)
    assert sum(limiter.allow("10.0.0.1") for _ in range(20)) == 5
    assert limiter.take_summary() == {"10.0.0.1": 30} and limiter.take_summary() == {}


def test_zero_rate_means_no_limit():
    limiter = RateLimiter(rate=0, burst=1)
    assert all(limiter.allow("x") for _ in range(1000))
