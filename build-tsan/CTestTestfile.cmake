# CMake generated Testfile for 
# Source directory: /work/wt/events
# Build directory: /work/wt/events/build-tsan
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test([=[unit_test_clock]=] "/work/wt/events/build-tsan/unit_test_clock")
set_tests_properties([=[unit_test_clock]=] PROPERTIES  ENVIRONMENT "FDN_SOURCE_DIR=/work/wt/events;FDN_BINARY_DIR=/work/wt/events/build-tsan" LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/wt/events/CMakeLists.txt;132;add_test;/work/wt/events/CMakeLists.txt;147;fdn_add_test_dir;/work/wt/events/CMakeLists.txt;0;")
add_test([=[unit_test_events]=] "/work/wt/events/build-tsan/unit_test_events")
set_tests_properties([=[unit_test_events]=] PROPERTIES  ENVIRONMENT "FDN_SOURCE_DIR=/work/wt/events;FDN_BINARY_DIR=/work/wt/events/build-tsan" LABELS "unit" TIMEOUT "120" _BACKTRACE_TRIPLES "/work/wt/events/CMakeLists.txt;132;add_test;/work/wt/events/CMakeLists.txt;147;fdn_add_test_dir;/work/wt/events/CMakeLists.txt;0;")
add_test([=[stress_test_events_stress]=] "/work/wt/events/build-tsan/stress_test_events_stress")
set_tests_properties([=[stress_test_events_stress]=] PROPERTIES  ENVIRONMENT "FDN_SOURCE_DIR=/work/wt/events;FDN_BINARY_DIR=/work/wt/events/build-tsan" LABELS "stress" TIMEOUT "600" _BACKTRACE_TRIPLES "/work/wt/events/CMakeLists.txt;132;add_test;/work/wt/events/CMakeLists.txt;148;fdn_add_test_dir;/work/wt/events/CMakeLists.txt;0;")
add_test([=[fault_test_events_kill]=] "/work/wt/events/build-tsan/fault_test_events_kill")
set_tests_properties([=[fault_test_events_kill]=] PROPERTIES  ENVIRONMENT "FDN_SOURCE_DIR=/work/wt/events;FDN_BINARY_DIR=/work/wt/events/build-tsan" LABELS "fault" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/wt/events/CMakeLists.txt;132;add_test;/work/wt/events/CMakeLists.txt;149;fdn_add_test_dir;/work/wt/events/CMakeLists.txt;0;")
add_test([=[fuzz_event_binary]=] "/work/wt/events/build-tsan/fuzz_event_binary_replay" "/work/wt/events/fuzz/corpus/event_binary")
set_tests_properties([=[fuzz_event_binary]=] PROPERTIES  LABELS "fuzz" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/wt/events/CMakeLists.txt;161;add_test;/work/wt/events/CMakeLists.txt;0;")
add_test([=[fuzz_event_json]=] "/work/wt/events/build-tsan/fuzz_event_json_replay" "/work/wt/events/fuzz/corpus/event_json")
set_tests_properties([=[fuzz_event_json]=] PROPERTIES  LABELS "fuzz" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/wt/events/CMakeLists.txt;161;add_test;/work/wt/events/CMakeLists.txt;0;")
