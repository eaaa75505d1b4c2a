# libFuzzer targets and their corpus replay under make check (see test/fuzz/README.md).
#
# Each target test/fuzz/fuzz_<t>.c is linked here, with gcc and without
# libFuzzer, to test/fuzz/replay_main.c as test/fuzz/replay_<t>, which feeds
# it every file of test/fuzz/corpus/<t>/. scripts/fuzz builds the libFuzzer
# binaries with clang, outside the tree (build-fuzz/).

FUZZ_REPLAYS = \
	test/fuzz/replay_jws \
	test/fuzz/replay_jwks \
	test/fuzz/replay_jwe \
	test/fuzz/replay_state \
	test/fuzz/replay_query \
	test/fuzz/replay_cookie \
	test/fuzz/replay_redirect \
	test/fuzz/replay_token_response \
	test/fuzz/replay_api \
	test/fuzz/replay_settings \
	test/fuzz/replay_idtoken
check_PROGRAMS += $(FUZZ_REPLAYS)
TESTS += $(FUZZ_REPLAYS)

FUZZ_CORPUS_DIR = $(abs_top_srcdir)/test/fuzz/corpus
FUZZ_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/test/fuzz

test_fuzz_replay_jws_SOURCES = test/fuzz/fuzz_jws.c test/fuzz/replay_main.c
test_fuzz_replay_jws_CPPFLAGS = $(FUZZ_CPPFLAGS) -DFUZZ_CORPUS='"$(FUZZ_CORPUS_DIR)/jws"'
test_fuzz_replay_jws_LDADD = $(UNIT_LDADD)

test_fuzz_replay_jwks_SOURCES = test/fuzz/fuzz_jwks.c test/fuzz/replay_main.c
test_fuzz_replay_jwks_CPPFLAGS = $(FUZZ_CPPFLAGS) -DFUZZ_CORPUS='"$(FUZZ_CORPUS_DIR)/jwks"'
test_fuzz_replay_jwks_LDADD = $(UNIT_LDADD)

test_fuzz_replay_jwe_SOURCES = test/fuzz/fuzz_jwe.c test/fuzz/replay_main.c
test_fuzz_replay_jwe_CPPFLAGS = $(FUZZ_CPPFLAGS) -DFUZZ_CORPUS='"$(FUZZ_CORPUS_DIR)/jwe"'
test_fuzz_replay_jwe_LDADD = $(UNIT_LDADD)

test_fuzz_replay_state_SOURCES = test/fuzz/fuzz_state.c test/fuzz/replay_main.c
test_fuzz_replay_state_CPPFLAGS = $(FUZZ_CPPFLAGS) -DFUZZ_CORPUS='"$(FUZZ_CORPUS_DIR)/state"'
test_fuzz_replay_state_LDADD = $(UNIT_LDADD)

test_fuzz_replay_query_SOURCES = test/fuzz/fuzz_query.c test/fuzz/replay_main.c
test_fuzz_replay_query_CPPFLAGS = $(FUZZ_CPPFLAGS) -DFUZZ_CORPUS='"$(FUZZ_CORPUS_DIR)/query"'
test_fuzz_replay_query_LDADD = $(UNIT_LDADD)

test_fuzz_replay_cookie_SOURCES = test/fuzz/fuzz_cookie.c test/fuzz/replay_main.c
test_fuzz_replay_cookie_CPPFLAGS = $(FUZZ_CPPFLAGS) -DFUZZ_CORPUS='"$(FUZZ_CORPUS_DIR)/cookie"'
test_fuzz_replay_cookie_LDADD = $(UNIT_LDADD)

test_fuzz_replay_redirect_SOURCES = test/fuzz/fuzz_redirect.c test/fuzz/replay_main.c
test_fuzz_replay_redirect_CPPFLAGS = $(FUZZ_CPPFLAGS) -DFUZZ_CORPUS='"$(FUZZ_CORPUS_DIR)/redirect"'
test_fuzz_replay_redirect_LDADD = $(UNIT_LDADD)

test_fuzz_replay_token_response_SOURCES = test/fuzz/fuzz_token_response.c \
	test/fuzz/replay_main.c test/unit/msa_responder.c test/unit/msa_responder.h
test_fuzz_replay_token_response_CPPFLAGS = $(FUZZ_CPPFLAGS) \
	-DFUZZ_CORPUS='"$(FUZZ_CORPUS_DIR)/token_response"'
test_fuzz_replay_token_response_LDADD = $(UNIT_LDADD)

test_fuzz_replay_api_SOURCES = test/fuzz/fuzz_api.c test/fuzz/replay_main.c
test_fuzz_replay_api_CPPFLAGS = $(FUZZ_CPPFLAGS) -DFUZZ_CORPUS='"$(FUZZ_CORPUS_DIR)/api"'
test_fuzz_replay_api_LDADD = $(UNIT_LDADD)

test_fuzz_replay_settings_SOURCES = test/fuzz/fuzz_settings.c test/fuzz/replay_main.c
test_fuzz_replay_settings_CPPFLAGS = $(FUZZ_CPPFLAGS) -DFUZZ_CORPUS='"$(FUZZ_CORPUS_DIR)/settings"'
test_fuzz_replay_settings_LDADD = $(UNIT_LDADD)

noinst_HEADERS += test/fuzz/fuzz.h test/fuzz/fuzz_rsa.h
EXTRA_DIST += test/fuzz/README.md test/fuzz/pool_shim.c test/fuzz/gen_seeds.c \
	test/fuzz/corpus

test_fuzz_replay_idtoken_SOURCES = test/fuzz/fuzz_idtoken.c test/fuzz/replay_main.c
test_fuzz_replay_idtoken_CPPFLAGS = $(FUZZ_CPPFLAGS) -DFUZZ_CORPUS='"$(FUZZ_CORPUS_DIR)/idtoken"'
test_fuzz_replay_idtoken_LDADD = $(UNIT_LDADD)
